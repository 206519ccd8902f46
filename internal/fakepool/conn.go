package fakepool

import (
	"context"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// conn is a Pool's redis.Conn: every method runs the hooks of its Method.
type conn struct {
	p     *Pool
	ctx   context.Context // of the Pool.Get
	inner redis.Conn      // nil: no pool wrapped
}

// send returns a Send that runs f on the wrapped Conn, or fails with
// ErrNoServer when there is none.
func (c *conn) send(f func(redis.Conn) (any, error)) Send {
	return func() (any, error) {
		if c.inner == nil {
			return nil, ErrNoServer
		}
		return f(c.inner)
	}
}

func (c *conn) Get(name string) (string, error) {
	reply, err := c.p.call(&Call{Method: Get, Ctx: c.ctx, Key: name}, c.send(func(inner redis.Conn) (any, error) {
		return inner.Get(name)
	}))
	v, _ := reply.(string)
	return v, err
}

func (c *conn) Set(name, value string) (bool, error) {
	reply, err := c.p.call(&Call{Method: Set, Ctx: c.ctx, Key: name, Value: value}, c.send(func(inner redis.Conn) (any, error) {
		return inner.Set(name, value)
	}))
	ok, _ := reply.(bool)
	return ok, err
}

func (c *conn) SetNX(name, value string, expiry time.Duration) (bool, error) {
	call := &Call{Method: SetNX, Ctx: c.ctx, Key: name, Value: value, Expiry: expiry}
	reply, err := c.p.call(call, c.send(func(inner redis.Conn) (any, error) {
		return inner.SetNX(name, value, expiry)
	}))
	ok, _ := reply.(bool)
	return ok, err
}

func (c *conn) Eval(script *redis.Script, keysAndArgs ...any) (any, error) {
	call := &Call{Method: Eval, Ctx: c.ctx, Script: script, KeysAndArgs: keysAndArgs}
	if len(keysAndArgs) > 0 {
		call.Key, _ = keysAndArgs[0].(string)
	}
	return c.p.call(call, c.send(func(inner redis.Conn) (any, error) {
		return inner.Eval(script, keysAndArgs...)
	}))
}

func (c *conn) ScriptLoad(script *redis.Script) error {
	_, err := c.p.call(&Call{Method: ScriptLoad, Ctx: c.ctx, Script: script}, c.send(func(inner redis.Conn) (any, error) {
		return nil, inner.ScriptLoad(script)
	}))
	return err
}

func (c *conn) PTTL(name string) (time.Duration, error) {
	reply, err := c.p.call(&Call{Method: PTTL, Ctx: c.ctx, Key: name}, c.send(func(inner redis.Conn) (any, error) {
		return inner.PTTL(name)
	}))
	ttl, _ := reply.(time.Duration)
	return ttl, err
}

func (c *conn) Close() error {
	_, err := c.p.call(&Call{Method: Close, Ctx: c.ctx}, func() (any, error) {
		if c.inner == nil {
			return nil, nil
		}
		return nil, c.inner.Close()
	})
	return err
}

// doerConn is a conn that is also a redis.Doer (WithDoer).
type doerConn struct{ conn }

func (c *doerConn) Do(args ...string) (any, error) {
	return c.p.call(&Call{Method: Do, Ctx: c.ctx, Args: args}, c.send(func(inner redis.Conn) (any, error) {
		doer, ok := inner.(redis.Doer)
		if !ok {
			return nil, ErrNoServer
		}
		return doer.Do(args...)
	}))
}

// subscription is a Pool's redis.Subscription (Listening).
type subscription struct {
	p     *Pool
	ctx   context.Context // of the Pool.Subscribe
	inner redis.Subscription
}

func (s *subscription) send(f func(redis.Subscription) (any, error)) Send {
	return func() (any, error) {
		if s.inner == nil {
			return nil, ErrNoServer
		}
		return f(s.inner)
	}
}

func (s *subscription) Subscribe(ctx context.Context, channels ...string) error {
	_, err := s.p.call(&Call{Method: SubSubscribe, Ctx: ctx, Args: channels}, s.send(func(inner redis.Subscription) (any, error) {
		return nil, inner.Subscribe(ctx, channels...)
	}))
	return err
}

func (s *subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	_, err := s.p.call(&Call{Method: SubUnsubscribe, Ctx: ctx, Args: channels}, s.send(func(inner redis.Subscription) (any, error) {
		return nil, inner.Unsubscribe(ctx, channels...)
	}))
	return err
}

func (s *subscription) Receive() (redis.Event, error) {
	reply, err := s.p.call(&Call{Method: SubReceive, Ctx: s.ctx}, s.send(func(inner redis.Subscription) (any, error) {
		return inner.Receive()
	}))
	ev, _ := reply.(redis.Event)
	return ev, err
}

func (s *subscription) Close() error {
	_, err := s.p.call(&Call{Method: SubClose, Ctx: s.ctx}, func() (any, error) {
		if s.inner == nil {
			return nil, nil
		}
		return nil, s.inner.Close()
	})
	return err
}
