// Package fakepool is the one fake redis.Pool of the tests: it wraps a
// pool (or none) and runs hooks on Pool.Get, Pool.Subscribe and every
// method of its Conns and Subscriptions, to delay a call, fail it, panic,
// block it until released, answer in the server's place, rewrite a reply,
// and it counts every call.
//
// A Pool from New is a user's own: it implements redis.Pool and nothing
// else, and its Conns redis.Conn and nothing else, so the library treats
// it as it would a Pool written for redsync. WithDoer gives its Conns
// redis.Doer and Listening gives the Pool redis.Subscriber, as this
// project's adapters have them; each forwards to the wrapped pool's.
package fakepool

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// Method names a call that hooks run on and that a Pool counts.
type Method string

// The methods of a Pool, of its Conns and of its Subscriptions.
const (
	PoolGet       Method = "Pool.Get"
	PoolSubscribe Method = "Pool.Subscribe" // only through Listening

	Get        Method = "Conn.Get"
	Set        Method = "Conn.Set"
	SetNX      Method = "Conn.SetNX"
	Eval       Method = "Conn.Eval"
	ScriptLoad Method = "Conn.ScriptLoad"
	PTTL       Method = "Conn.PTTL"
	Do         Method = "Conn.Do" // only WithDoer
	Close      Method = "Conn.Close"

	SubSubscribe   Method = "Subscription.Subscribe"
	SubUnsubscribe Method = "Subscription.Unsubscribe"
	SubReceive     Method = "Subscription.Receive"
	SubClose       Method = "Subscription.Close"
)

// ErrNoServer is the error of a call that no hook answered, on a Pool that
// wraps no pool (or an optional interface the wrapped pool lacks).
var ErrNoServer = errors.New("fakepool: no pool wrapped to send the call to")

// Call is one call made on a Pool, its Conns or its Subscriptions, as
// hooks see it. Only the fields that its Method has are set.
type Call struct {
	Method Method
	// Ctx is the context given to the Pool.Get (or Pool.Subscribe) the
	// call belongs to; for Subscription.Subscribe and Unsubscribe, their
	// own.
	Ctx context.Context
	// Key is the key of Get, Set, SetNX and PTTL, and the first of Eval's
	// keysAndArgs when it is a string.
	Key    string
	Value  string        // Set, SetNX
	Expiry time.Duration // SetNX
	Script *redis.Script // Eval, ScriptLoad
	// KeysAndArgs are Eval's.
	KeysAndArgs []any
	// Args are Do's command (its name first), or the channels of
	// Subscription.Subscribe and Unsubscribe.
	Args []string
}

// Send makes the call on the wrapped pool (or the next hook) and returns
// its reply: a redis.Conn for Pool.Get, a redis.Subscription for
// Pool.Subscribe, a redis.Event for Subscription.Receive, the method's
// first result otherwise (nil for those that return only an error).
type Send func() (any, error)

// Hook runs in place of a call: it may call send, once, and returns what
// the call returns. A reply of another type than the method's (nil among
// them) is returned as the method's zero value.
type Hook func(c *Call, send Send) (any, error)

// Before returns a Hook that runs f, then sends the call unless f returned
// an error, which the call then returns. f may also sleep, block or panic.
func Before(f func(c *Call) error) Hook {
	return func(c *Call, send Send) (any, error) {
		if err := f(c); err != nil {
			return nil, err
		}
		return send()
	}
}

// Answer returns a Hook that sends nothing and returns reply and err, as a
// server would have: Answer(false, nil) on SetNX refuses, Answer(nil, nil)
// on Eval is a script that answered nothing.
func Answer(reply any, err error) Hook {
	return func(*Call, Send) (any, error) { return reply, err }
}

// Fail returns a Hook that sends nothing and fails the call with err.
func Fail(err error) Hook { return Answer(nil, err) }

// Delay returns a Hook that waits d, then sends the call.
func Delay(d time.Duration) Hook {
	return Before(func(*Call) error {
		time.Sleep(d)
		return nil
	})
}

// Block returns a Hook that holds the call until release is closed, then
// sends it; or, as a server that does not answer, until the call's
// context ends, and fails it with the context's error.
func Block(release <-chan struct{}) Hook {
	return Before(func(c *Call) error {
		select {
		case <-release:
			return nil
		case <-c.Ctx.Done():
			return c.Ctx.Err()
		}
	})
}

// Pool is a redis.Pool over another that runs hooks and counts calls. Its
// methods are safe for concurrent use, On included.
type Pool struct {
	inner redis.Pool
	doer  bool

	mu    sync.Mutex // guards hooks, calls and evals
	hooks map[Method][]Hook
	calls map[Method]int
	evals map[*redis.Script]int
}

// An Option configures a Pool made by New.
type Option func(*Pool)

// WithDoer gives the Pool's Conns redis.Doer, forwarded to the wrapped
// pool's Conns (ErrNoServer when they lack it).
func WithDoer() Option { return func(p *Pool) { p.doer = true } }

// New returns a Pool over inner, which may be nil: then a call that no
// hook answers fails with ErrNoServer.
func New(inner redis.Pool, opts ...Option) *Pool {
	p := &Pool{inner: inner, hooks: map[Method][]Hook{}, calls: map[Method]int{}, evals: map[*redis.Script]int{}}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// On adds hooks to the calls of method m. The hook added first runs first,
// and its send runs the next; the last one's sends the call. It returns p.
func (p *Pool) On(m Method, hooks ...Hook) *Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hooks[m] = append(p.hooks[m], hooks...)
	return p
}

// Inner returns the pool p wraps (nil if none).
func (p *Pool) Inner() redis.Pool { return p.inner }

// Listening returns p as a Pool that also implements redis.Subscriber,
// forwarded to the wrapped pool's (ErrNoServer when it lacks it), with
// hooks on Pool.Subscribe and the Subscription's methods. Every call
// returns the same value.
func (p *Pool) Listening() redis.Pool { return listening{p} }

// Calls returns how many calls of method m were made, whatever their
// hooks did.
func (p *Pool) Calls(m Method) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[m]
}

// Counts returns the calls made so far by method.
func (p *Pool) Counts() map[Method]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Method]int, len(p.calls))
	for m, n := range p.calls {
		out[m] = n
	}
	return out
}

// Evals returns how many Evals of script were made.
func (p *Pool) Evals(script *redis.Script) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.evals[script]
}

// call counts c and runs it through the hooks of its method, the last of
// which sends it with send.
func (p *Pool) call(c *Call, send Send) (any, error) {
	p.mu.Lock()
	p.calls[c.Method]++
	if c.Method == Eval {
		p.evals[c.Script]++
	}
	hooks := p.hooks[c.Method]
	p.mu.Unlock()
	return chain(c, hooks, send)
}

func chain(c *Call, hooks []Hook, send Send) (any, error) {
	if len(hooks) == 0 {
		return send()
	}
	return hooks[0](c, func() (any, error) { return chain(c, hooks[1:], send) })
}

// Get implements redis.Pool.
func (p *Pool) Get(ctx context.Context) (redis.Conn, error) {
	reply, err := p.call(&Call{Method: PoolGet, Ctx: ctx}, func() (any, error) {
		if p.inner == nil {
			return nil, nil
		}
		return p.inner.Get(ctx)
	})
	if err != nil {
		return nil, err
	}
	inner, _ := reply.(redis.Conn)
	c := conn{p: p, ctx: ctx, inner: inner}
	if p.doer {
		return &doerConn{c}, nil
	}
	return &c, nil
}

// listening is a Pool that is also a redis.Subscriber.
type listening struct{ *Pool }

// Subscribe implements redis.Subscriber.
func (l listening) Subscribe(ctx context.Context) (redis.Subscription, error) {
	reply, err := l.call(&Call{Method: PoolSubscribe, Ctx: ctx}, func() (any, error) {
		sub, ok := l.inner.(redis.Subscriber)
		if !ok {
			return nil, ErrNoServer
		}
		return sub.Subscribe(ctx)
	})
	if err != nil {
		return nil, err
	}
	inner, _ := reply.(redis.Subscription)
	return &subscription{p: l.Pool, ctx: ctx, inner: inner}, nil
}
