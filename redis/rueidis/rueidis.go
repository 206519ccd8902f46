package rueidis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"

	"github.com/quorumlock/redsync/internal/nilness"
	"github.com/quorumlock/redsync/internal/scripthash"
	"github.com/quorumlock/redsync/internal/scriptkeys"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

// NewPool returns a redsync Pool whose connections send their commands
// through delegate. It never closes delegate (or its rueidis.Client): the
// caller owns it.
//
// The Pool is a redis.Subscriber, so that waiters wake when a lock is
// released: each Subscription is a connection that delegate.Client()
// dedicates to pub/sub. Its dial, in Dedicate, takes no context and is
// bounded by ClientOption.Dialer.Timeout (a cluster client dials later,
// within the Subscribe context). rueidiscompat's PubSub is not used: it
// subscribes again behind the caller's back after a failed connection, so
// a release published meanwhile goes unheard, and it drops what its buffer
// cannot hold.
func NewPool(delegate rueidiscompat.Cmdable) redsyncredis.Pool {
	if nilness.IsNil(delegate) {
		return nil // a nil Pool, which redsync.New reports as an *ArgumentError
	}
	return &pool{delegate: delegate}
}

type pool struct {
	delegate rueidiscompat.Cmdable
}

// Get returns a Conn bound to ctx (context.Background() when ctx is nil).
// rueidis manages its own connections, so Get does no I/O and never fails.
func (p *pool) Get(ctx context.Context) (redsyncredis.Conn, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return &conn{delegate: p.delegate, ctx: ctx}, nil
}

type conn struct {
	delegate rueidiscompat.Cmdable
	ctx      context.Context
}

func (c *conn) Get(name string) (string, error) {
	value, err := c.delegate.Get(c.ctx, name).Result()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	return value, err
}

func (c *conn) Set(name string, value string) (bool, error) {
	reply, err := c.delegate.Set(c.ctx, name, value, 0).Result()
	return reply == "OK", err
}

// SetNX always sends SET NX PX, through the underlying rueidis.Client:
// rueidiscompat's SetNX switches to EX for whole seconds and to SETNX (no
// expiry at all) for a zero expiry.
func (c *conn) SetNX(name string, value string, expiry time.Duration) (bool, error) {
	client := c.delegate.Client()
	cmd := client.B().Set().Key(name).Value(value).Nx().PxMilliseconds(int64(expiry / time.Millisecond)).Build()
	reply, err := client.Do(c.ctx, cmd).ToString()
	if rueidis.IsRedisNil(err) {
		return false, nil // the key exists
	}
	return reply == "OK", err
}

func (c *conn) PTTL(name string) (time.Duration, error) {
	ttl, err := c.delegate.PTTL(c.ctx, name).Result()
	// rueidiscompat, like go-redis, passes Redis' -1 and -2 through as bare
	// nanoseconds; every positive reply it has already scaled.
	switch ttl {
	case -1:
		ttl = -time.Millisecond
	case -2:
		ttl = -2 * time.Millisecond
	}
	return ttl, err
}

func (c *conn) Eval(script *redsyncredis.Script, keysAndArgs ...any) (_ any, err error) {
	// A cluster client panics on keys of different slots.
	defer scriptkeys.RecoverCrossSlot(&err)
	keys, args, err := scriptkeys.Split(script.KeyCount, keysAndArgs)
	if err != nil {
		return nil, fmt.Errorf("rueidis: %w", err)
	}
	v, err := c.delegate.EvalSha(c.ctx, scripthash.Of(script.Src, script.Hash), keys, args...).Result()
	if reply, ok := rueidis.IsRedisErr(err); ok && reply.IsNoScript() {
		v, err = c.delegate.Eval(c.ctx, script.Src, keys, args...).Result()
	}
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (c *conn) ScriptLoad(script *redsyncredis.Script) error {
	hash, err := c.delegate.ScriptLoad(c.ctx, script.Src).Result()
	if err != nil {
		return err
	}
	script.Hash = hash
	return nil
}

// Close does nothing: rueidis multiplexes its connections and needs
// nothing back.
func (c *conn) Close() error {
	return nil
}
