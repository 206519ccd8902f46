package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	"github.com/redis/go-redis/v9"
)

// newQuorumlock returns a Redsync of this library over clients.
func newQuorumlock(clients []*redis.Client) *redsync.Redsync {
	pools := make([]redsyncredis.Pool, len(clients))
	for i, c := range clients {
		pools[i] = goredis.NewPool(c)
	}
	return redsync.New(pools...)
}

// BenchmarkPrimitives compares, on 1, 3 and 5 servers, one goroutine's
// Mutex Lock+Unlock with a Semaphore's Acquire+Release (weight 1 of 4
// permits), an RWMutex's RLock+RUnlock (RWMutexRead) and Lock+Unlock
// (RWMutexWrite), and a MultiMutex's Lock+Unlock of 2 and 8 names:
//
//	go test -run '^$' -bench Primitives -benchmem -count 6 . | tee new.txt
func BenchmarkPrimitives(b *testing.B) {
	f := testFleet(b, maxServers)
	for _, n := range []int{1, 3, 5} {
		run := func(name string, lockUnlock func(ctx context.Context, rs *redsync.Redsync) (func() error, func() error)) {
			b.Run(fmt.Sprintf("%s/N=%d", name, n), func(b *testing.B) {
				clients := f.clients(n)
				defer closeClients(clients)
				rs := newQuorumlock(clients)
				defer rs.Wait()
				ctx, cancel := requestContext()
				defer cancel()
				lock, unlock := lockUnlock(ctx, rs)
				b.ReportAllocs()
				for b.Loop() {
					if err := lock(); err != nil {
						b.Fatalf("acquire: %v", err)
					}
					if err := unlock(); err != nil {
						b.Fatalf("release: %v", err)
					}
				}
			})
		}
		run("Mutex", func(ctx context.Context, rs *redsync.Redsync) (func() error, func() error) {
			m := rs.NewMutex(fmt.Sprintf("bench:prim:mutex:N%d", n))
			return func() error { return m.LockContext(ctx) }, func() error { _, err := m.UnlockContext(ctx); return err }
		})
		run("Semaphore", func(ctx context.Context, rs *redsync.Redsync) (func() error, func() error) {
			sem := rs.NewSemaphore(fmt.Sprintf("bench:prim:sem:N%d", n), 4)
			var lease *redsync.Lease
			return func() (err error) { lease, err = sem.Acquire(ctx, 1); return err },
				func() error { return lease.Release(ctx) }
		})
		run("RWMutexRead", func(ctx context.Context, rs *redsync.Redsync) (func() error, func() error) {
			rw := rs.NewRWMutex(fmt.Sprintf("bench:prim:rw:N%d", n))
			return func() error { return rw.RLockContext(ctx) }, func() error { _, err := rw.RUnlockContext(ctx); return err }
		})
		run("RWMutexWrite", func(ctx context.Context, rs *redsync.Redsync) (func() error, func() error) {
			rw := rs.NewRWMutex(fmt.Sprintf("bench:prim:rw:N%d", n))
			return func() error { return rw.LockContext(ctx) }, func() error { _, err := rw.UnlockContext(ctx); return err }
		})
		for _, names := range []int{2, 8} {
			run(fmt.Sprintf("MultiMutex%d", names), func(ctx context.Context, rs *redsync.Redsync) (func() error, func() error) {
				list := make([]string, names)
				for i := range list {
					list[i] = fmt.Sprintf("bench:prim:multi:N%d:%d", n, i)
				}
				mm := rs.NewMultiMutex(list)
				return func() error { return mm.LockContext(ctx) }, func() error { _, err := mm.UnlockContext(ctx); return err }
			})
		}
	}
}

// BenchmarkSemaphoreContended: 16 goroutines over 4 permits on 3 servers,
// each acquiring and releasing a weight of 1; ns/op is wall time per
// acquisition. It reports the highest weight seen held at once (at most 4).
func BenchmarkSemaphoreContended(b *testing.B) {
	f := testFleet(b, 3)
	clients := f.clients(3)
	defer closeClients(clients)
	rs := newQuorumlock(clients)
	defer rs.Wait()
	sem := rs.NewSemaphore("bench:sem:contended", 4)
	ctx, cancel := requestContext()
	defer cancel()
	var held heldWeight
	b.ReportAllocs()
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !held.acquireRelease(b, ctx, sem, 0) {
				return
			}
		}
	})
	b.ReportMetric(float64(held.highest.Load()), "max-held")
}

// BenchmarkSemaphoreClients measures how the Semaphore shares its permits
// among clients: Redsyncs (as processes would be, each with its own
// connections and waiter queues) of several goroutines acquire and release
// a weight of 1 of 4 permits on 3 servers, holding it for 2 ms (so that
// the permits are what they wait for), b.N acquisitions in all; ns/op is
// wall time per acquisition. equal: 4 clients of 4 goroutines; unequal:
// clients of 1, 2, 4 and 8. It reports each client's and each goroutine's
// share of the acquisitions relative to an equal share among the clients
// or the goroutines (1 is fair): the smallest and the largest (client-min,
// client-max, gor-min, gor-max), and the highest weight seen held at once
// (at most 4).
func BenchmarkSemaphoreClients(b *testing.B) {
	for _, bc := range []struct {
		name       string
		goroutines []int // per client
	}{{"equal", []int{4, 4, 4, 4}}, {"unequal", []int{1, 2, 4, 8}}} {
		b.Run(bc.name, func(b *testing.B) { semaphoreClients(b, bc.goroutines) })
	}
}

func semaphoreClients(b *testing.B, goroutines []int) {
	f := testFleet(b, 3)
	ctx, cancel := requestContext()
	defer cancel()
	var client []int // of each goroutine
	sems := make([]*redsync.Semaphore, len(goroutines))
	for i, n := range goroutines {
		clients := f.clients(3)
		defer closeClients(clients)
		rs := newQuorumlock(clients)
		defer rs.Wait()
		sems[i] = rs.NewSemaphore("bench:sem:clients", 4)
		for range n {
			client = append(client, i)
		}
	}
	var left atomic.Int64
	var held heldWeight
	left.Store(int64(b.N))
	counts := make([]atomic.Int64, len(client))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := sems[client[g]]
			for left.Add(-1) >= 0 && held.acquireRelease(b, ctx, sem, 2*time.Millisecond) {
				counts[g].Add(1)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	perClient := make([]int64, len(goroutines))
	perGoroutine := make([]int64, len(counts))
	for g := range counts {
		perGoroutine[g] = counts[g].Load()
		perClient[client[g]] += perGoroutine[g]
	}
	lo, hi := shares(perClient)
	b.ReportMetric(lo, "client-min")
	b.ReportMetric(hi, "client-max")
	lo, hi = shares(perGoroutine)
	b.ReportMetric(lo, "gor-min")
	b.ReportMetric(hi, "gor-max")
	b.ReportMetric(float64(held.highest.Load()), "max-held")
}

// heldWeight counts the permits held at once, and the most seen.
type heldWeight struct {
	now, highest atomic.Int64
}

// acquireRelease acquires a weight of 1 of sem, holds it for work and
// releases it; false after an error, which it reports.
func (h *heldWeight) acquireRelease(b *testing.B, ctx context.Context, sem *redsync.Semaphore, work time.Duration) bool {
	lease, err := sem.Acquire(ctx, 1)
	if err != nil {
		b.Errorf("Acquire: %v", err)
		return false
	}
	now := h.now.Add(1)
	for seen := h.highest.Load(); now > seen && !h.highest.CompareAndSwap(seen, now); seen = h.highest.Load() {
	}
	if work > 0 {
		time.Sleep(work) // the holder's work
	}
	h.now.Add(-1)
	if err := lease.Release(ctx); err != nil {
		b.Errorf("Release: %v", err)
		return false
	}
	return true
}

// shares returns the smallest and the largest of counts relative to their
// mean.
func shares(counts []int64) (lo, hi float64) {
	var sum int64
	for _, c := range counts {
		sum += c
	}
	if sum == 0 {
		return 0, 0
	}
	mean := float64(sum) / float64(len(counts))
	lo, hi = float64(slices.Min(counts))/mean, float64(slices.Max(counts))/mean
	return lo, hi
}
