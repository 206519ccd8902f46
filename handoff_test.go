package redsync

import (
	"context"
	"fmt"
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

// realPools starts n redis-servers and returns a go-redis pool for each,
// closed when the test ends.
func realPools(t *testing.T, n int) []redis.Pool {
	t.Helper()
	pools := make([]redis.Pool, n)
	for i, s := range redistest.Start(t, n) {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	return pools
}

// TestContendedLockTakesOneAttemptPerAcquisition: under contention in one
// process, a Lock behind other waiters queues without a first try (it
// would find the lock held or reserved for them), and the late
// announcements of a release that a waiter took wake nobody else. So the
// waiters spend about one attempt per acquisition, where a first try per
// Lock and wake-ups by stale announcements used to double that.
func TestContendedLockTakesOneAttemptPerAcquisition(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rs := New(realPools(t, n)...)
			t.Cleanup(rs.Wait)
			counter := &recorder{Keep: isAttempt}
			var (
				wg     sync.WaitGroup
				inside int32
			)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := rs.NewMutex("contended", WithObserver(counter))
					for i := 0; i < 20; i++ {
						if !assert.NoError(t, m.Lock()) {
							return
						}
						assert.Equal(t, int32(1), atomic.AddInt32(&inside, 1))
						time.Sleep(time.Millisecond)
						atomic.AddInt32(&inside, -1)
						_, err := m.Unlock()
						assert.NoError(t, err)
					}
				}()
			}
			wg.Wait()
			acquired := int64(len(counter.Attempts(func(e AttemptEvent) bool { return e.Acquired })))
			sent := int64(len(counter.Attempts(func(e AttemptEvent) bool { return !e.HandedOver })))
			require.Equal(t, int64(160), acquired)
			t.Logf("%d attempts sent for %d acquisitions, %d handed over", sent, acquired, handedOver(counter))
			// Each Lock sends one attempt, which takes the lock or queues
			// it; the releases then hand it over. A loaded machine may
			// let a waiter renew its lease now and then (an attempt).
			assert.LessOrEqual(t, float64(sent)/float64(acquired), 1.3)
		})
	}
}

// TestLockQueuedFromTheStartTriesBeforeGivingUp: a Lock that queued behind
// other waiters without a first try still makes one try before its tries
// run out, so its error says the lock is taken, as redsync's would.
func TestLockQueuedFromTheStartTriesBeforeGivingUp(t *testing.T) {
	rs := New(realPools(t, 3)...)
	t.Cleanup(rs.Wait)
	holder := rs.NewMutex("queued")
	require.NoError(t, holder.Lock())
	defer holder.Unlock()

	// A waiter queues for the name...
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting := make(chan error, 1)
	go func() { waiting <- rs.NewMutex("queued").LockContext(ctx) }()
	require.Eventually(t, func() bool {
		return rs.handoff.state("queued").Queued == 1
	}, 5*time.Second, time.Millisecond)

	// ... and the next Lock queues behind it in the fleet queue; when its
	// tries run out it fails as redsync's would.
	counter := &recorder{Keep: isAttempt}
	late := rs.NewMutex("queued", WithTries(2), WithRetryDelay(20*time.Millisecond), WithObserver(counter))
	err := late.Lock()
	var taken *ErrTaken
	require.ErrorAs(t, err, &taken)
	assert.LessOrEqual(t, len(counter.Attempts()), 3, "one to queue, one after the subscriptions were confirmed, one at the end")

	cancel()
	assert.ErrorIs(t, <-waiting, context.Canceled)
}

// BenchmarkContendedLockUnlock: goroutines of one process take turns at
// one lock on three real servers, so that most acquisitions are hand-overs
// (the path of internal/handoff). ns/op is per Lock+Unlock of the group;
// attempts/op and handed/op (acquisitions handed over) tell whether the
// waiting changed, which moves allocs/op too.
//
//	go test -run '^$' -bench ContendedLockUnlock -benchmem -count 8 .
func BenchmarkContendedLockUnlock(b *testing.B) {
	pools := make([]redis.Pool, 3)
	for i, s := range redistest.Start(b, 3) {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		b.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	rs := New(pools...)
	b.Cleanup(rs.Wait)
	counter := &benchCounter{}
	b.ReportAllocs()
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		m := rs.NewMutex("bench:contended", WithObserver(counter))
		for pb.Next() {
			if err := m.Lock(); err != nil {
				b.Error(err)
				return
			}
			if _, err := m.Unlock(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(atomic.LoadInt64(&counter.attempts))/float64(b.N), "attempts/op")
	b.ReportMetric(float64(atomic.LoadInt64(&counter.handed))/float64(b.N), "handed/op")
}

// benchCounter counts attempts, and the acquisitions handed over.
type benchCounter struct {
	BaseObserver
	attempts, handed int64
}

func (o *benchCounter) Attempt(_ context.Context, e AttemptEvent) {
	atomic.AddInt64(&o.attempts, 1)
	if e.Acquired && e.HandedOver {
		atomic.AddInt64(&o.handed, 1)
	}
}
