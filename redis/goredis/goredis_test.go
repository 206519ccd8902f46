package goredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/adaptertest"
	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; TestFailoverCanLoseALock kills a
	// master on purpose.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m,
		// go-redis keeps probing a server it failed to dial (the killed
		// master) for a second after its client is closed, asleep in
		// time.Sleep most of the time: tryDial is not the top function.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T, addr string) redsyncredis.Pool {
		client := redis.NewClient(&redis.Options{
			Addr: addr,
			// Without it go-redis bounds socket I/O by ReadTimeout and
			// WriteTimeout only, and the deadline subtest fails.
			ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { _ = client.Close() })
		return goredis.NewPool(client)
	})
}

// TestDeadlineNeedsContextTimeoutEnabled pins the go-redis behaviour the
// package comment warns about: without Options.ContextTimeoutEnabled a
// command to a server that does not answer waits for ReadTimeout, not for
// the context's deadline.
func TestDeadlineNeedsContextTimeoutEnabled(t *testing.T) {
	const (
		deadline    = 100 * time.Millisecond
		readTimeout = 600 * time.Millisecond
	)
	srv := redistest.Start(t, 1)[0]
	client := redis.NewClient(&redis.Options{
		Addr:        srv.Addr(),
		ReadTimeout: readTimeout,
		MaxRetries:  -1,
	})
	t.Cleanup(func() { _ = client.Close() })
	pool := goredis.NewPool(client)

	conn, err := pool.Get(context.Background())
	require.NoError(t, err)
	_, err = conn.Get("warm-up") // leaves a pooled connection
	require.NoError(t, err)

	srv.Pause(t)
	defer srv.Resume(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	conn, err = pool.Get(ctx)
	require.NoError(t, err)
	start := time.Now()
	_, err = conn.Get("k")
	elapsed := time.Since(start)
	require.Error(t, err)
	require.GreaterOrEqual(t, elapsed, readTimeout-50*time.Millisecond,
		"go-redis now honours the deadline without ContextTimeoutEnabled: update the package comment")
}
