package goredis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// sendCounter is a go-redis hook that counts what goes out: commands sent
// alone and pipelines with the commands in them, leaving out the pipeline
// that go-redis sends on each new connection (HELLO and CLIENT SETINFO).
type sendCounter struct {
	alone, pipelines, pipelined int64 // atomic
}

func (h *sendCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *sendCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		atomic.AddInt64(&h.alone, 1)
		return next(ctx, cmd)
	}
}

func (h *sendCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if name := cmds[0].Name(); name == "hello" || name == "client" || name == "auth" {
			return next(ctx, cmds)
		}
		atomic.AddInt64(&h.pipelines, 1)
		atomic.AddInt64(&h.pipelined, int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// countedClient returns a client of srv with a sendCounter hook.
func countedClient(t *testing.T, addr string, opts ...func(*redis.Options)) (*redis.Client, *sendCounter) {
	o := &redis.Options{Addr: addr, MaxRetries: -1}
	for _, opt := range opts {
		opt(o)
	}
	client := redis.NewClient(o)
	t.Cleanup(func() { _ = client.Close() })
	counter := &sendCounter{}
	client.AddHook(counter)
	return client, counter
}

// hammer runs goroutines that each set and read back keys of their own
// through pool, and fails t on any wrong reply.
func hammer(t *testing.T, pool redsyncredis.Pool, goroutines, perGoroutine int) {
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				conn, err := pool.Get(context.Background())
				if !assert.NoError(t, err) {
					return
				}
				key, value := fmt.Sprintf("hammer:%d", g), fmt.Sprintf("v%d", i)
				ok, err := conn.Set(key, value)
				assert.True(t, ok)
				assert.NoError(t, err)
				got, err := conn.Get(key)
				assert.NoError(t, err)
				assert.Equal(t, value, got, "goroutine %d got another's reply", g)
				reply, err := conn.Eval(redsyncredis.NewScript(1, `return redis.call("GET", KEYS[1])`, ""), key)
				assert.NoError(t, err)
				assert.Equal(t, value, reply)
				ok, err = conn.SetNX(key, "other", time.Minute)
				assert.False(t, ok)
				assert.NoError(t, err)
				ttl, err := conn.PTTL(key)
				assert.NoError(t, err)
				assert.Equal(t, -time.Millisecond, ttl, "no expiry")
				_ = conn.Close()
			}
		}(g)
	}
	wg.Wait()
}

func TestConcurrentCommandsGoOutTogetherWithTheirOwnReplies(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	client, counter := countedClient(t, srv.Addr())
	hammer(t, goredis.NewPool(client), 16, 200)

	alone, pipelines, pipelined := atomic.LoadInt64(&counter.alone), atomic.LoadInt64(&counter.pipelines), atomic.LoadInt64(&counter.pipelined)
	t.Logf("%d commands alone, %d in %d pipelines", alone, pipelined, pipelines)
	assert.Greater(t, pipelines, int64(0), "no command went out with another")
	assert.Greater(t, float64(pipelined)/float64(pipelines), 1.5, "commands per pipeline")
}

func TestWithBatchingFalseSendsEveryCommandAlone(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	client, counter := countedClient(t, srv.Addr())
	hammer(t, goredis.NewPoolWithOptions(client, goredis.WithBatching(false)), 8, 50)
	assert.Zero(t, atomic.LoadInt64(&counter.pipelines))
	// Each Eval is an EVALSHA, and an EVAL after NOSCRIPT the first time.
	assert.GreaterOrEqual(t, atomic.LoadInt64(&counter.alone), int64(8*50*5))
}

// TestACommandWaitingForABatchReturnsWhenItsContextEnds: behind batches
// stuck on a stopped server (as many as may be on their way), a queued
// command returns at its own deadline and is never sent; the commands that
// queued with it still are, once a stuck batch returns, by one of them
// although the first in the queue gave up.
func TestACommandWaitingForABatchReturnsWhenItsContextEnds(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	const readTimeout = 700 * time.Millisecond
	client, _ := countedClient(t, srv.Addr(), func(o *redis.Options) { o.ReadTimeout = readTimeout })
	pool := goredis.NewPool(client)
	warm, err := pool.Get(context.Background())
	require.NoError(t, err)
	_, err = warm.Get("warm-up")
	require.NoError(t, err)

	srv.Pause(t)
	stuck := make(chan error, goredis.MaxInFlight)
	for i := 0; i < goredis.MaxInFlight; i++ {
		go func(i int) {
			conn, _ := pool.Get(context.Background())
			_, err := conn.Set(fmt.Sprintf("stuck:%d", i), "1")
			stuck <- err
		}(i)
	}
	time.Sleep(50 * time.Millisecond) // the stuck batches are on their way

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	gaveUp := make(chan error, 1)
	start := time.Now()
	go func() {
		conn, _ := pool.Get(ctx)
		_, err := conn.Set("gave-up", "1")
		gaveUp <- err
	}()
	time.Sleep(20 * time.Millisecond) // first in the queue
	later := make(chan error, 1)
	go func() {
		conn, _ := pool.Get(context.Background())
		_, err := conn.Set("later", "1")
		later <- err
	}()

	err = <-gaveUp
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), readTimeout/2, "returned at its deadline, not with the stuck batch")

	srv.Resume(t)
	for i := 0; i < goredis.MaxInFlight; i++ {
		assert.NoError(t, within(t, stuck, 5*time.Second), "resumed before the read timeout")
	}
	assert.NoError(t, within(t, later, 5*time.Second), "the command queued after the one that gave up was sent")

	check, err := pool.Get(context.Background())
	require.NoError(t, err)
	for key, want := range map[string]string{"later": "1", "gave-up": ""} {
		got, err := check.Get(key)
		require.NoError(t, err)
		assert.Equal(t, want, got, "key %s", key)
	}
}

// within returns what ch delivers within d, and fails t when it delivers
// nothing.
func within(t *testing.T, ch <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("nothing within %v", d)
		return nil
	}
}

// TestBatchesKeepTheirCommandsOnAClusterClient: a pipeline of a cluster
// client splits by hash slot, and every reply still reaches its command.
func TestBatchesKeepTheirCommandsOnAClusterClient(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	hammer(t, goredis.NewPool(client), 12, 60)
}

// TestEveryCommandOfAFailedBatchReportsTheFailure: when go-redis cannot
// even set up the connection for a pipeline because the server refuses the
// handshake with a Redis error (here SELECT of a database it does not
// have), go-redis leaves the commands without reply and without
// error. Each must still report the failure: an Eval without either would
// read as a nil reply, which a lock must never take for success.
func TestEveryCommandOfAFailedBatchReportsTheFailure(t *testing.T) {
	srv := redistest.Start(t, 1)[0]
	client, counter := countedClient(t, srv.Addr(), func(o *redis.Options) { o.DB = 1000 })
	pool := goredis.NewPool(client)
	script := redsyncredis.NewScript(1, `return 1`, "")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				conn, _ := pool.Get(context.Background())
				reply, err := conn.Eval(script, "k")
				assert.Error(t, err, "reply %v", reply)
				ok, err := conn.SetNX("k", "v", time.Minute)
				assert.False(t, ok)
				assert.Error(t, err)
				_ = conn.Close()
			}
		}()
	}
	wg.Wait()
	assert.Greater(t, atomic.LoadInt64(&counter.pipelines), int64(0), "no batch was tried")
}
