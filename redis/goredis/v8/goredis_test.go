package goredis_test

import (
	"context"
	"testing"

	"github.com/go-redis/redis/v8"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/adaptertest"
	"github.com/quorumlock/redsync/internal/mutextest"
	"github.com/quorumlock/redsync/internal/primtest"
	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis/v8"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the behaviour suite kills servers on
	// purpose.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m,
		// go-redis keeps probing a server it failed to dial for a second
		// after its client is closed, asleep in time.Sleep most of the
		// time: tryDial is not the top function.
		goleak.IgnoreAnyFunction("github.com/go-redis/redis/v8/internal/pool.(*ConnPool).tryDial"),
	)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

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
	mutextest.Run(t, mutextest.Adapter{Name: "goredis-v8", NewPool: newPool})
}

func TestPrimitives(t *testing.T) {
	primtest.Run(t, primtest.Adapter{Name: "goredis-v8", NewPool: newPool})
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

// TestOnlyARingPoolCannotSubscribe pins NewPool's rule: a Client's pool is
// a redis.Subscriber, so that waiters wake on a release; a Ring's is not,
// as its pub/sub connection would sit on one shard only.
func TestOnlyARingPoolCannotSubscribe(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // never dialled
	t.Cleanup(func() { _ = client.Close() })
	assert.Implements(t, (*redsyncredis.Subscriber)(nil), goredis.NewPool(client))

	// Not NewRing: the heartbeat goroutine of a go-redis v8.11.5 Ring never
	// stops, Close or not. NewPool looks at the type only.
	_, subscribes := goredis.NewPool(&redis.Ring{}).(redsyncredis.Subscriber)
	assert.False(t, subscribes, "a Ring pool must not be a redis.Subscriber")
}
