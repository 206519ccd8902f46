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
	"strconv"
	"time"

	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/redis/go-redis/v9"
)

// NewPool returns a redsync Pool whose connections send their commands
// through delegate. It never closes delegate: the caller owns it.
func NewPool(delegate redis.UniversalClient) redsyncredis.Pool {
	return &pool{delegate: delegate}
}

type pool struct {
	delegate redis.UniversalClient
}

// Get returns a Conn bound to ctx (context.Background() when ctx is nil).
// go-redis manages its own connections, so Get does no I/O and never fails.
func (p *pool) Get(ctx context.Context) (redsyncredis.Conn, error) {
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
	keys, args, err := splitKeys(script.KeyCount, keysAndArgs)
	if err != nil {
		return nil, err
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

// Close does nothing: go-redis returns its connection to its pool after
// every command.
func (c *conn) Close() error {
	return nil
}

// splitKeys splits keysAndArgs into the keys and the arguments of a script
// taking keyCount keys (or, when keyCount is negative, as many as the first
// element says). go-redis wants the keys as strings.
func splitKeys(keyCount int, keysAndArgs []any) ([]string, []any, error) {
	if keyCount < 0 {
		if len(keysAndArgs) == 0 {
			return nil, nil, fmt.Errorf("goredis: script takes its key count as the first argument, but no arguments were given")
		}
		n, ok := keyCountOf(keysAndArgs[0])
		if !ok {
			return nil, nil, fmt.Errorf("goredis: script key count (first argument) is %#v, want a non-negative integer", keysAndArgs[0])
		}
		keyCount, keysAndArgs = n, keysAndArgs[1:]
	}
	if keyCount > len(keysAndArgs) {
		return nil, nil, fmt.Errorf("goredis: script takes %d keys, but only %d keys and arguments were given", keyCount, len(keysAndArgs))
	}
	switch keyCount {
	case 0:
		return nil, keysAndArgs, nil
	case 1:
		// The common case (every redsync script): no loop, one small slice.
		return []string{keyString(keysAndArgs[0])}, keysAndArgs[1:], nil
	}
	keys := make([]string, keyCount)
	for i := range keys {
		keys[i] = keyString(keysAndArgs[i])
	}
	return keys, keysAndArgs[keyCount:], nil
}

// keyString returns key as the string go-redis needs, sending the same bytes
// that go-redis (and redigo) would send for key as an argument.
func keyString(key any) string {
	switch k := key.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	default:
		return fmt.Sprint(k)
	}
}

// keyCountOf returns v as a key count if it is a non-negative integer (of
// any Go integer type, or its decimal text, as Redis would accept it).
func keyCountOf(v any) (int, bool) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int8:
		n = int64(x)
	case int16:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint:
		n = int64(x)
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case uint64:
		n = int64(x)
	case string:
		parsed, err := strconv.ParseInt(x, 10, 0)
		if err != nil {
			return 0, false
		}
		n = parsed
	default:
		return 0, false
	}
	if n < 0 || n > int64(^uint(0)>>1) {
		return 0, false
	}
	return int(n), true
}
