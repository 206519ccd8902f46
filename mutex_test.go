package redsync_test

import (
	"context"
	"testing"
	"time"

	redigolib "github.com/gomodule/redigo/redis"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/mutextest"
	"github.com/quorumlock/redsync/internal/primtest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	"github.com/quorumlock/redsync/redis/redigo"
)

// TestMutex runs the behaviour suite on real servers through the adapters
// of this module and through a Pool written by a user, each client built
// with its default options.
func TestMutex(t *testing.T) {
	mutextest.Run(t, rootAdapters()...)
}

// TestPrimitives runs the behaviour suite of the Semaphore, MultiMutex,
// RWMutex and Election as TestMutex runs the Mutex's.
func TestPrimitives(t *testing.T) {
	primtest.Run(t, rootAdapters()...)
}

// rootAdapters are the adapters of this module (go-redis v9 and redigo)
// and a Pool written by a user.
func rootAdapters() []mutextest.Adapter {
	return []mutextest.Adapter{
		{Name: "goredis", NewPool: func(t *testing.T, addr string) redis.Pool {
			client := goredislib.NewClient(&goredislib.Options{Addr: addr})
			t.Cleanup(func() { _ = client.Close() })
			return goredis.NewPool(client)
		}},
		{Name: "redigo", NewPool: func(t *testing.T, addr string) redis.Pool {
			pool := &redigolib.Pool{
				MaxIdle: 16,
				DialContext: func(ctx context.Context) (redigolib.Conn, error) {
					return redigolib.DialContext(ctx, "tcp", addr)
				},
			}
			t.Cleanup(func() { _ = pool.Close() })
			return redigo.NewPool(pool)
		}},
		{Name: "custom", NewPool: func(t *testing.T, addr string) redis.Pool {
			client := goredislib.NewClient(&goredislib.Options{Addr: addr})
			t.Cleanup(func() { _ = client.Close() })
			return &userPool{client: client}
		}},
	}
}

// userPool is a Pool a user might write on top of a client of their own,
// to show that the root package needs nothing beyond the redis contract.
type userPool struct {
	client *goredislib.Client
}

func (p *userPool) Get(ctx context.Context) (redis.Conn, error) {
	return &userConn{client: p.client, ctx: ctx}, nil
}

type userConn struct {
	client *goredislib.Client
	ctx    context.Context
}

func (c *userConn) Get(name string) (string, error) {
	v, err := c.client.Get(c.ctx, name).Result()
	if err == goredislib.Nil {
		return "", nil
	}
	return v, err
}

func (c *userConn) Set(name, value string) (bool, error) {
	err := c.client.Set(c.ctx, name, value, 0).Err()
	return err == nil, err
}

func (c *userConn) SetNX(name, value string, expiry time.Duration) (bool, error) {
	return c.client.SetNX(c.ctx, name, value, expiry).Result()
}

func (c *userConn) Eval(script *redis.Script, keysAndArgs ...any) (any, error) {
	keys := make([]string, script.KeyCount)
	for i := range keys {
		keys[i] = keysAndArgs[i].(string)
	}
	v, err := c.client.Eval(c.ctx, script.Src, keys, keysAndArgs[script.KeyCount:]...).Result()
	if err == goredislib.Nil {
		return nil, nil
	}
	return v, err
}

func (c *userConn) ScriptLoad(script *redis.Script) error {
	return c.client.ScriptLoad(c.ctx, script.Src).Err()
}

func (c *userConn) PTTL(name string) (time.Duration, error) {
	return c.client.PTTL(c.ctx, name).Result()
}

func (c *userConn) Close() error { return nil }
