package goredis_test

import (
	"context"
	"io"
	"log"
	"testing"
	"time"

	"github.com/go-redis/redis/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/adaptertest"
	"github.com/quorumlock/redsync/internal/mutextest"
	"github.com/quorumlock/redsync/internal/primtest"
	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis/v7"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the behaviour suite kills servers on
	// purpose.
	redis.SetLogger(log.New(io.Discard, "", 0))
	goleak.VerifyTestMain(m,
		// go-redis keeps probing a server it failed to dial for a second
		// after its client is closed, asleep in time.Sleep most of the
		// time: tryDial is not the top function.
		goleak.IgnoreAnyFunction("github.com/go-redis/redis/v7/internal/pool.(*ConnPool).tryDial"),
	)
}

// newPool builds the client as a user would, with go-redis' defaults: v8
// honours context deadlines without any option.
func newPool(t *testing.T, addr string) redsyncredis.Pool {
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	return goredis.NewPool(client)
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, newPool)
}

func TestMutex(t *testing.T) {
	mutextest.Run(t, mutextest.Adapter{Name: "goredis-v7", NewPool: newPool})
}

func TestPrimitives(t *testing.T) {
	primtest.Run(t, primtest.Adapter{Name: "goredis-v7", NewPool: newPool})
}

// TestNilContextUsesTheClientsContext pins redsync's behaviour: Get(nil)
// binds the Conn to the context the client was given with WithContext.
func TestNilContextUsesTheClientsContext(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	var noCtx context.Context
	conn, err := goredis.NewPool(client.WithContext(ctx)).Get(noCtx)
	require.NoError(t, err)
	_, err = conn.SetNX("k", "v", 0)
	assert.ErrorIs(t, err, context.Canceled)

	conn, err = goredis.NewPool(client).Get(noCtx)
	require.NoError(t, err)
	ok, err := conn.Set("k", "v")
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestContextBoundsRingCommands pins what redsync's v7 adapter missed: a
// Ring's commands get the context too.
func TestContextBoundsRingCommands(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: map[string]string{"shard": srv.Addr()},
		// The Ring's heartbeat goroutine notices Close only at its next
		// beat (500 ms by default), later than goleak looks.
		HeartbeatFrequency: 10 * time.Millisecond,
	})
	t.Cleanup(func() { _ = ring.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	conn, err := goredis.NewPool(ring).Get(ctx)
	require.NoError(t, err)
	_, err = conn.SetNX("k", "v", time.Second)
	assert.ErrorIs(t, err, context.Canceled)
	n, err := srv.Client(t).Exists(context.Background(), "k").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the command must not reach the server")
}

// TestOnlyARingPoolCannotSubscribe pins NewPool's rule: a Client's pool is
// a redis.Subscriber, so that waiters wake on a release; a Ring's is not,
// as its pub/sub connection would sit on one shard only.
func TestOnlyARingPoolCannotSubscribe(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	assert.Implements(t, (*redsyncredis.Subscriber)(nil), goredis.NewPool(client))

	ring := redis.NewRing(&redis.RingOptions{
		Addrs: map[string]string{"shard": srv.Addr()},
		// The Ring's heartbeat goroutine notices Close only at its next
		// beat (500 ms by default), later than goleak looks.
		HeartbeatFrequency: 10 * time.Millisecond,
	})
	t.Cleanup(func() { _ = ring.Close() })
	pool := goredis.NewPool(ring)
	_, subscribes := pool.(redsyncredis.Subscriber)
	assert.False(t, subscribes, "a Ring pool must not be a redis.Subscriber")
	conn, err := pool.Get(context.Background())
	require.NoError(t, err)
	ok, err := conn.Set("k", "v")
	require.NoError(t, err)
	assert.True(t, ok, "the Ring pool still locks")
}
