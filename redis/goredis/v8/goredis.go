// Package goredis adapts github.com/go-redis/redis/v8 to redsync's
// redis.Pool, so that a *redis.Client, *redis.ClusterClient, *redis.Ring or a
// failover client of go-redis v8 can hold locks. It is the package that
// redsync's import path .../redis/goredis/v8 names after the prefix rewrite;
// for go-redis v9 use github.com/quorumlock/redsync/redis/goredis.
//
// The context given to Pool.Get is passed to every command of the returned
// Conn. A context that is already done fails the command before anything is
// written to the server. go-redis v8 always applies a context's deadline to
// socket reads and writes (the earlier of it and ReadTimeout or WriteTimeout
// wins), so a command to a server that does not answer returns at the
// deadline, with a net timeout error (matching os.ErrDeadlineExceeded) or
// with context.DeadlineExceeded when go-redis was about to retry it. A
// command cut short is not withdrawn: a server that was merely slow may
// still execute it. Cancelling a context without a deadline never
// interrupts a command already sent.
//
// Errors are go-redis' own, unwrapped; errors made by this package start
// with "goredis:".
package goredis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-redis/redis/v8"

	"github.com/quorumlock/redsync/internal/nilness"
	"github.com/quorumlock/redsync/internal/scripthash"
	"github.com/quorumlock/redsync/internal/scriptkeys"
	redsyncredis "github.com/quorumlock/redsync/redis"
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
	if nilness.IsNil(delegate) {
		return nil // a nil Pool, which redsync.New reports as an *ArgumentError
	}
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

// Get returns a Conn bound to ctx; with a nil ctx, to the delegate's own
// context (see redis.Client.WithContext), as in redsync. go-redis manages its
// own connections, so Get does no I/O and never fails.
func (p *pool) Get(ctx context.Context) (redsyncredis.Conn, error) {
	if ctx == nil {
		ctx = p.delegate.Context()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return &conn{delegate: p.delegate, ctx: ctx}, nil
}

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

// PTTL asks for the bare integer reply, which is in milliseconds for every
// answer, -1 and -2 included: go-redis' PTTL passes those two through as
// nanoseconds.
func (c *conn) PTTL(name string) (time.Duration, error) {
	cmd := redis.NewIntCmd(c.ctx, "pttl", name)
	_ = c.delegate.Process(c.ctx, cmd)
	ms, err := cmd.Result()
	if err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (c *conn) Eval(script *redsyncredis.Script, keysAndArgs ...any) (any, error) {
	keys, args, err := scriptkeys.Split(script.KeyCount, keysAndArgs)
	if err != nil {
		return nil, fmt.Errorf("goredis: %w", err)
	}
	v, err := c.delegate.EvalSha(c.ctx, scripthash.Of(script.Src, script.Hash), keys, args...).Result()
	if isNoScript(err) {
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

// Close does nothing: go-redis returns its connection to its pool after
// every command.
func (c *conn) Close() error {
	return nil
}

// isNoScript reports whether err is the server's NOSCRIPT error reply (and
// not, say, a network error whose text happens to say so).
func isNoScript(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "NOSCRIPT")
}
