// Package goredis adapts github.com/redis/go-redis/v9 to redsync's
// redis.Pool, so that a *redis.Client, *redis.ClusterClient, *redis.Ring or a
// failover client can hold locks.
//
// The context given to Pool.Get is passed to every command of the returned
// Conn: a context that is already cancelled or past its deadline fails the
// command before anything is written to the server. Whether a deadline also
// cuts short a command that is waiting for a slow or stopped server depends on
// the client's options: go-redis applies context deadlines to socket reads and
// writes only when Options.ContextTimeoutEnabled is set; without it, its own
// ReadTimeout and WriteTimeout (3 s by default) bound the wait, whatever the
// context says. Cancelling a context without a deadline never interrupts a
// command already sent. Set ContextTimeoutEnabled when lock calls must
// return within their context's deadline. A command cut short by a deadline
// fails with a net timeout error (matching os.ErrDeadlineExceeded), or with
// context.DeadlineExceeded when go-redis was about to retry it; either way
// it is not withdrawn, and a server that was merely slow may still execute
// it.
//
// Errors are go-redis' own, unwrapped, so that its helpers and
// errors.Is(err, context.DeadlineExceeded) keep working; errors made by this
// package start with "goredis:".
package goredis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quorumlock/redsync/internal/scriptkeys"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/redis/go-redis/v9"
)

// NewPool returns a redsync Pool whose connections send their commands
// through delegate. It never closes delegate: the caller owns it.
//
// The Pool is a redis.Subscriber, so that waiters wake when a lock is
// released, except for a *redis.Ring: a Ring puts a pub/sub connection on
// the shard of its first channel, while a release publishes on the shard of
// its key, so most releases would go unheard (and go-redis panics on a Ring
// subscription without channels). Waiters on a Ring poll instead.
func NewPool(delegate redis.UniversalClient) redsyncredis.Pool {
	p := &pool{delegate: delegate}
	if _, ok := delegate.(*redis.Ring); ok {
		return pollingPool{p}
	}
	return p
}

// pollingPool is a pool without Subscribe.
type pollingPool struct {
	pool *pool
}

func (p pollingPool) Get(ctx context.Context) (redsyncredis.Conn, error) {
	return p.pool.Get(ctx)
}

type pool struct {
	delegate redis.UniversalClient
}

// Get returns a Conn bound to ctx (context.Background() when ctx is nil).
// go-redis manages its own connections, so Get does no I/O and never fails.
// The Conn must not be used after Close, which recycles it.
func (p *pool) Get(ctx context.Context) (redsyncredis.Conn, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	c, _ := conns.Get().(*conn)
	if c == nil {
		c = new(conn)
	}
	c.delegate, c.ctx = p.delegate, ctx
	return c, nil
}

// conns recycles the Conns that Close gave back: a lock operation takes one
// per server.
var conns sync.Pool

type conn struct {
	delegate redis.UniversalClient
	ctx      context.Context
}

func (c *conn) Get(name string) (string, error) {
	value, err := c.delegate.Get(c.ctx, name).Result()
	if err == redis.Nil {
		return "", nil
	}
	return value, err
}

func (c *conn) Set(name string, value string) (bool, error) {
	reply, err := c.delegate.Set(c.ctx, name, value, 0).Result()
	return reply == "OK", err
}

// SetNX always sends SET NX PX: go-redis' own SetNX switches to EX for whole
// seconds and to SETNX (no expiry at all) for a zero expiry.
func (c *conn) SetNX(name string, value string, expiry time.Duration) (bool, error) {
	cmd := redis.NewBoolCmd(c.ctx, "set", name, value, "nx", "px", int64(expiry/time.Millisecond))
	_ = c.delegate.Process(c.ctx, cmd)
	return cmd.Result()
}

func (c *conn) PTTL(name string) (time.Duration, error) {
	ttl, err := c.delegate.PTTL(c.ctx, name).Result()
	// go-redis passes Redis' -1 and -2 through as bare nanoseconds; every
	// other reply it has already scaled to milliseconds.
	switch ttl {
	case -1:
		ttl = -time.Millisecond
	case -2:
		ttl = -2 * time.Millisecond
	}
	return ttl, err
}

func (c *conn) Eval(script *redsyncredis.Script, keysAndArgs ...any) (any, error) {
	keys, args, err := scriptkeys.Split(script.KeyCount, keysAndArgs)
	if err != nil {
		return nil, fmt.Errorf("goredis: %w", err)
	}
	v, err := c.delegate.EvalSha(c.ctx, script.Hash, keys, args...).Result()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		v, err = c.delegate.Eval(c.ctx, script.Src, keys, args...).Result()
	}
	if err == redis.Nil {
		return nil, nil
	}
	return v, err
}

func (c *conn) ScriptLoad(script *redsyncredis.Script) error {
	hash, err := c.delegate.ScriptLoad(c.ctx, script.Src).Result()
	if err != nil {
		return err
	}
	script.Hash = hash
	return nil
}

// Close recycles the Conn; go-redis itself returns its connection to its
// pool after every command.
func (c *conn) Close() error {
	if c.delegate == nil {
		return nil // closed already: recycled once is enough
	}
	c.delegate, c.ctx = nil, nil
	conns.Put(c)
	return nil
}
