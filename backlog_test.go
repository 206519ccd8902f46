package redsync

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// TestAStalledServerUnderLoadIsSparedTheRequests: a stopped server answers
// nothing while its connections stay open, and every request sent to it
// waits on a goroutine until its context ends. Once it is backlogged,
// Locks stop sending it acquires (and their Unlocks releases it cannot
// need): the goroutines stop piling up while the other servers keep
// granting the lock, and once the server answers again it gets requests
// as before.
func TestAStalledServerUnderLoadIsSparedTheRequests(t *testing.T) {
	servers := redistest.Start(t, 3)
	pools := make([]redis.Pool, 3)
	inspect := make([]*goredislib.Client, 3)
	for i, s := range servers {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
		inspect[i] = s.Client(t)
	}
	rs := New(pools...)
	t.Cleanup(rs.Wait)
	rec := &recorder{Keep: func(e event) bool { return e.Node != nil && e.Node.Outcome == NodeNotSent }}
	// A 100 ms per-server deadline.
	opts := []Option{WithExpiry(2 * time.Second), WithObserver(rec)}
	servers[2].Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			servers[2].Resume(t)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		ops     int64
		backlog int64
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			m := rs.NewMutex(fmt.Sprintf("stalled:%d", g), opts...)
			for ctx.Err() == nil {
				if err := m.LockContext(ctx); err != nil {
					continue
				}
				if _, err := m.UnlockContext(ctx); err != nil && ctx.Err() == nil {
					atomic.AddInt64(&backlog, 1)
				}
				atomic.AddInt64(&ops, 1)
			}
		}(g)
	}
	// The first deadline's worth of requests waits on the stalled server;
	// after that, next to none.
	time.Sleep(500 * time.Millisecond)
	before, opsBefore := runtime.NumGoroutine(), atomic.LoadInt64(&ops)
	time.Sleep(time.Second)
	after, opsAfter := runtime.NumGoroutine(), atomic.LoadInt64(&ops)
	cancel()
	wg.Wait()
	t.Logf("goroutines %d then %d, while %d Lock+Unlock went on", before, after, opsAfter-opsBefore)
	require.Greater(t, opsAfter-opsBefore, int64(100), "the two servers kept granting the lock")
	assert.Less(t, after-before, 200, "requests to the stalled server stopped piling up")
	assert.Zero(t, atomic.LoadInt64(&backlog), "Unlock needs no release from the stalled server")
	notSent := rec.Nodes()
	wrong := 0
	for _, e := range notSent {
		if e.Err != ErrBacklogged || e.Node != 2 || e.Latency != 0 || e.Outcome.String() != "not_sent" {
			wrong++
		}
	}
	assert.Positive(t, len(notSent), "the requests not sent are reported")
	assert.Zero(t, wrong, "as NodeNotSent, ErrBacklogged, server 2, no latency")

	servers[2].Resume(t)
	resumed = true
	rs.Wait()
	// Answering again, the server gets its requests: after its
	// backlog drained, a Lock sets the key there too.
	m := rs.NewMutex("stalled:after", opts...)
	require.Eventually(t, func() bool {
		if err := m.Lock(); err != nil {
			return false
		}
		rs.Wait()
		v, _ := inspect[2].Get(context.Background(), "stalled:after").Result()
		_, _ = m.Unlock()
		return v != "" && v == m.Value()
	}, 5*time.Second, 10*time.Millisecond)
}
