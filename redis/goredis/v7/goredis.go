// Package goredis adapts github.com/go-redis/redis/v7 to redsync's
// redis.Pool, so that a *redis.Client, *redis.ClusterClient, *redis.Ring or a
// failover client of go-redis v7 can hold locks. It is the package that
// redsync's import path .../redis/goredis/v7 names after the prefix rewrite;
// for go-redis v9 use github.com/quorumlock/redsync/redis/goredis.
//
// go-redis v7's command methods take no context; this package sends every
// command through the UniversalClient's ProcessContext with the context
// given to Pool.Get, so that the context bounds the commands of every kind
// of client (redsync's adapter called WithContext on a *redis.Client or a
// *redis.ClusterClient only; a *redis.Ring went without). A context that is
// already done fails the command before anything is written to the server.
// go-redis v7 applies a context's deadline to socket reads and writes (the
// earlier of it and ReadTimeout or WriteTimeout wins), so a command to a
// server that does not answer returns at the deadline, with a net timeout
// error (matching os.ErrDeadlineExceeded). A command cut short is not
// withdrawn: a server that was merely slow may still execute it. Cancelling
// a context without a deadline never interrupts a command already sent.
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

	"github.com/go-redis/redis/v7"

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
// subscription without channels). Waiters on a Ring poll instead. go-redis
// v7's PubSub takes no context: a Subscription is bounded by the client's
// DialTimeout and WriteTimeout, and a context only fails its calls when it
// is already done.
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
// context (see redis.Client.WithContext). go-redis manages its own
// connections, so Get does no I/O and never fails.
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

// process sends cmd within c.ctx; the result is in cmd.
func (c *conn) process(cmd redis.Cmder) {
	_ = c.delegate.ProcessContext(c.ctx, cmd)
}

func (c *conn) Get(name string) (string, error) {
	cmd := redis.NewStringCmd("get", name)
	c.process(cmd)
	value, err := cmd.Result()
	if err == redis.Nil {
		return "", nil
	}
	return value, err
}

func (c *conn) Set(name string, value string) (bool, error) {
	cmd := redis.NewStatusCmd("set", name, value)
	c.process(cmd)
	reply, err := cmd.Result()
	return reply == "OK", err
}

// SetNX always sends SET NX PX: go-redis' own SetNX switches to EX for whole
// seconds and to SETNX (no expiry at all) for a zero expiry.
func (c *conn) SetNX(name string, value string, expiry time.Duration) (bool, error) {
	cmd := redis.NewBoolCmd("set", name, value, "nx", "px", int64(expiry/time.Millisecond))
	c.process(cmd)
	return cmd.Result()
}

// PTTL asks for the bare integer reply, which is in milliseconds for every
// answer, -1 and -2 included: go-redis' PTTL passes those two through as
// nanoseconds.
func (c *conn) PTTL(name string) (time.Duration, error) {
	cmd := redis.NewIntCmd("pttl", name)
	c.process(cmd)
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
	v, err := c.eval("evalsha", scripthash.Of(script.Src, script.Hash), keys, args)
	if isNoScript(err) {
		v, err = c.eval("eval", script.Src, keys, args)
	}
	if err == redis.Nil {
		return nil, nil
	}
	return v, err
}

// eval sends EVAL or EVALSHA (command) with the script's source or hash, in
// the layout go-redis' Eval uses, so that a cluster client routes it by its
// first key.
func (c *conn) eval(command, script string, keys []string, args []any) (any, error) {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, command, script, len(keys))
	for _, key := range keys {
		cmdArgs = append(cmdArgs, key)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewCmd(cmdArgs...)
	c.process(cmd)
	return cmd.Result()
}

func (c *conn) ScriptLoad(script *redsyncredis.Script) error {
	cmd := redis.NewStringCmd("script", "load", script.Src)
	c.process(cmd)
	hash, err := cmd.Result()
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
