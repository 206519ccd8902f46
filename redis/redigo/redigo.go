// Package redigo adapts github.com/gomodule/redigo to redsync's redis.Pool.
//
// The context given to Pool.Get bounds the wait for a pooled connection (and
// the dial, when the pool's DialContext is set) and every command of the
// returned Conn: a command is not sent at all once the context is done, and
// a command in flight returns as soon as the context is cancelled or its
// deadline passes, whichever comes first, even if the server never answers.
// redigo then closes the network connection, and Close discards it instead
// of returning it to the pool. The dial option DialReadTimeout still applies
// and wins when it is shorter than the time left before the deadline.
// redigo sets the socket's read deadline to the context's, so a command cut
// short by a deadline fails with either context.DeadlineExceeded or a net
// timeout error (matching os.ErrDeadlineExceeded), whichever redigo notices
// first. A command cut short is not withdrawn: a server that was merely slow
// may still execute it.
//
// A context that can never be done (context.Background, or a nil context
// given to Get) leaves commands bounded only by DialReadTimeout and
// DialWriteTimeout, as with redigo's plain Do.
//
// Bounding a command by a context needs a connection that implements
// redis.ConnWithContext, as every connection made by redigo's Dial functions
// and handed out by *redis.Pool does; with a connection of another kind every
// command whose context can be done fails with redigo's "connection does not
// support ConnWithContext" error.
//
// Errors are redigo's own, unwrapped (a server error reply is a redis.Error);
// errors made by this package start with "redigo:".
package redigo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/quorumlock/redsync/internal/nilness"
	"github.com/quorumlock/redsync/internal/scripthash"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

// Pool is the part of a redigo connection pool that NewPool needs.
// *redis.Pool implements it.
type Pool interface {
	// Get returns a connection; when it could not get one, the connection's
	// Err method reports why.
	Get() redis.Conn
	// GetContext returns a connection, waiting (and dialling) within ctx.
	GetContext(ctx context.Context) (redis.Conn, error)
}

// NewPool returns a redsync Pool that takes its connections from delegate.
// It never closes delegate: the caller owns it.
func NewPool(delegate Pool) redsyncredis.Pool {
	if nilness.IsNil(delegate) {
		return nil // a nil Pool, which redsync.New reports as an *ArgumentError
	}
	return &pool{delegate: delegate}
}

type pool struct {
	delegate Pool
}

// Get takes a connection from the delegate pool within ctx. With a nil ctx
// it uses the delegate's Get, and the commands are bounded only by the
// connection's own timeouts.
func (p *pool) Get(ctx context.Context) (redsyncredis.Conn, error) {
	if ctx == nil {
		c := p.delegate.Get()
		if err := c.Err(); err != nil {
			c.Close()
			return nil, err
		}
		return &conn{delegate: c, ctx: context.Background()}, nil
	}
	c, err := p.delegate.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{delegate: c, ctx: ctx}, nil
}

type conn struct {
	delegate redis.Conn
	ctx      context.Context
}

// do sends one command within c.ctx.
func (c *conn) do(cmd string, args ...any) (any, error) {
	if c.ctx.Done() == nil {
		// A context that is never done bounds nothing: skip the goroutine
		// and channel that redis.DoContext spends on every command.
		return c.delegate.Do(cmd, args...)
	}
	// redis.DoContext races the command against ctx.Done(), so with a
	// cancelled context a command might still be written; check first.
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	return redis.DoContext(c.delegate, c.ctx, cmd, args...)
}

func (c *conn) Get(name string) (string, error) {
	value, err := redis.String(c.do("GET", name))
	if err == redis.ErrNil {
		return "", nil
	}
	return value, err
}

func (c *conn) Set(name string, value string) (bool, error) {
	reply, err := redis.String(c.do("SET", name, value))
	if err == redis.ErrNil {
		return false, nil
	}
	return reply == "OK", err
}

func (c *conn) SetNX(name string, value string, expiry time.Duration) (bool, error) {
	reply, err := redis.String(c.do("SET", name, value, "NX", "PX", int64(expiry/time.Millisecond)))
	if err == redis.ErrNil {
		return false, nil
	}
	return reply == "OK", err
}

func (c *conn) PTTL(name string) (time.Duration, error) {
	ms, err := redis.Int64(c.do("PTTL", name))
	if err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Eval sends the reply as redigo decodes it: integers as int64, bulk
// strings as []byte, arrays as []any.
func (c *conn) Eval(script *redsyncredis.Script, keysAndArgs ...any) (any, error) {
	// One slice serves both commands: only its first element differs.
	var args []any
	if script.KeyCount < 0 {
		args = make([]any, 1+len(keysAndArgs))
		copy(args[1:], keysAndArgs)
	} else {
		args = make([]any, 2+len(keysAndArgs))
		args[1] = script.KeyCount
		copy(args[2:], keysAndArgs)
	}
	args[0] = scripthash.Of(script.Src, script.Hash)
	v, err := c.do("EVALSHA", args...)
	if isNoScript(err) {
		args[0] = script.Src
		v, err = c.do("EVAL", args...)
	}
	if err != nil {
		// redigo returns a server error reply both as the error and as the
		// value; keep only the error.
		return nil, err
	}
	return v, nil
}

func (c *conn) ScriptLoad(script *redsyncredis.Script) error {
	v, err := c.do("SCRIPT", "LOAD", script.Src)
	if err != nil {
		return err
	}
	switch hash := v.(type) {
	case []byte:
		script.Hash = string(hash)
	case string:
		script.Hash = hash
	default:
		return fmt.Errorf("redigo: SCRIPT LOAD replied %T (%v), want the script's hash as a bulk string", v, v)
	}
	return nil
}

// Close returns the connection to its pool (or closes it when redigo found
// it broken, for example after a command cut short by the context).
func (c *conn) Close() error {
	return c.delegate.Close()
}

func isNoScript(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && strings.HasPrefix(string(reply), "NOSCRIPT")
}
