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
// Commands of one Pool go out in batches: at most two batches of the
// Pool's commands are on their way to the server at once, and a command
// sent while both are waits for one of them to return, and then goes out
// with every command that queued meanwhile, as one go-redis pipeline; a
// command sent while fewer are on their way goes out at once, through the
// client's Process. Under load, many lock operations
// then share one write, one read and one wake-up of the server instead of
// paying for their own. Each command keeps its own reply and error. A
// command that waits for its batch returns with its context's error as
// soon as the context ends, and is then not sent (or, if its batch already
// left, its reply is dropped). The pipeline goes out under the context of
// the first command that queued for it (or the first whose context has not
// ended), so a go-redis hook sees it in ProcessPipelineHook with that
// context. WithBatching(false) sends every command on its own.
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

	"github.com/quorumlock/redsync/internal/nilness"
	"github.com/quorumlock/redsync/internal/scripthash"
	"github.com/quorumlock/redsync/internal/scriptkeys"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/redis/go-redis/v9"
)

// NewPool returns a redsync Pool whose connections send their commands
// through delegate, in batches (see the package comment). It never closes
// delegate: the caller owns it. It is NewPoolWithOptions without options,
// with redsync's signature, so that it can stand wherever redsync's
// constructor did (a function value, a table of constructors).
//
// The Pool is a redis.Subscriber, so that waiters wake when a lock is
// released, except for a *redis.Ring: a Ring puts a pub/sub connection on
// the shard of its first channel, while a release publishes on the shard of
// its key, so most releases would go unheard (and go-redis panics on a Ring
// subscription without channels). Waiters on a Ring poll instead.
func NewPool(delegate redis.UniversalClient) redsyncredis.Pool {
	return NewPoolWithOptions(delegate)
}

// NewPoolWithOptions is NewPool with options that change how the Pool
// sends its commands (WithBatching).
func NewPoolWithOptions(delegate redis.UniversalClient, opts ...Option) redsyncredis.Pool {
	if nilness.IsNil(delegate) {
		return nil // a nil Pool, which redsync.New reports as an *ArgumentError
	}
	p := &pool{delegate: delegate, batch: &batcher{client: delegate}}
	for _, opt := range opts {
		opt(p)
	}
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
	batch    *batcher // nil: every command goes out on its own
}

// An Option changes how a Pool sends its commands; see NewPoolWithOptions.
type Option func(*pool)

// WithBatching(false) makes every command of the Pool go out on its own,
// through the client's Process, as redsync's adapter sends them. By
// default (true) commands that the Pool's users issue while two batches
// are on their way go out together, as one pipeline (see the package
// comment).
func WithBatching(on bool) Option {
	return func(p *pool) {
		if !on {
			p.batch = nil
		} else if p.batch == nil {
			p.batch = &batcher{client: p.delegate}
		}
	}
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
	c.delegate, c.batch, c.ctx = p.delegate, p.batch, ctx
	return c, nil
}

// conns recycles the Conns that Close gave back: a lock operation takes one
// per server.
var conns sync.Pool

type conn struct {
	delegate redis.UniversalClient
	batch    *batcher
	ctx      context.Context
}

// process sends cmd, in a batch when the Pool batches. A non-nil error
// means the command's reply will not be waited for, and cmd must not be
// read.
func (c *conn) process(cmd redis.Cmder) error {
	if c.batch == nil {
		_ = c.delegate.Process(c.ctx, cmd)
		return nil
	}
	return c.batch.process(c.ctx, cmd)
}

func (c *conn) Get(name string) (string, error) {
	cmd := redis.NewStringCmd(c.ctx, "get", name)
	if err := c.process(cmd); err != nil {
		return "", err
	}
	value, err := cmd.Result()
	if err == redis.Nil {
		return "", nil
	}
	return value, err
}

func (c *conn) Set(name string, value string) (bool, error) {
	cmd := redis.NewStatusCmd(c.ctx, "set", name, value)
	if err := c.process(cmd); err != nil {
		return false, err
	}
	reply, err := cmd.Result()
	return reply == "OK", err
}

// SetNX always sends SET NX PX: go-redis' own SetNX switches to EX for whole
// seconds and to SETNX (no expiry at all) for a zero expiry.
func (c *conn) SetNX(name string, value string, expiry time.Duration) (bool, error) {
	cmd := redis.NewBoolCmd(c.ctx, "set", name, value, "nx", "px", int64(expiry/time.Millisecond))
	if err := c.process(cmd); err != nil {
		return false, err
	}
	return cmd.Result()
}

func (c *conn) PTTL(name string) (time.Duration, error) {
	cmd := redis.NewDurationCmd(c.ctx, time.Millisecond, "pttl", name)
	if err := c.process(cmd); err != nil {
		return 0, err
	}
	ttl, err := cmd.Result()
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
	keyCount, keysAndArgs, err := scriptkeys.Count(script.KeyCount, keysAndArgs)
	if err != nil {
		return nil, fmt.Errorf("goredis: %w", err)
	}
	v, err := c.eval("evalsha", scripthash.Of(script.Src, script.Hash), keyCount, keysAndArgs)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		v, err = c.eval("eval", script.Src, keyCount, keysAndArgs)
	}
	if err == redis.Nil {
		return nil, nil
	}
	return v, err
}

// eval sends EVAL or EVALSHA (command) with the script's source or hash,
// the number of keys and the keys and arguments, as given: go-redis writes
// a key that is not a string as it writes any argument.
func (c *conn) eval(command, script string, keyCount int, keysAndArgs []any) (any, error) {
	cmdArgs := make([]any, 0, 3+len(keysAndArgs))
	cmdArgs = append(cmdArgs, command, script, keyCount)
	cmdArgs = append(cmdArgs, keysAndArgs...)
	cmd := redis.NewCmd(c.ctx, cmdArgs...)
	if keyCount > 0 {
		cmd.SetFirstKeyPos(3) // for a cluster client to route it by the first key
	}
	if err := c.process(cmd); err != nil {
		return nil, err
	}
	return cmd.Result()
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
	c.delegate, c.batch, c.ctx = nil, nil, nil
	conns.Put(c)
	return nil
}
