package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
	var held, highest atomic.Int32
	b.ReportAllocs()
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lease, err := sem.Acquire(ctx, 1)
			if err != nil {
				b.Errorf("Acquire: %v", err)
				return
			}
			now := held.Add(1)
			for h := highest.Load(); now > h && !highest.CompareAndSwap(h, now); h = highest.Load() {
			}
			held.Add(-1)
			if err := lease.Release(ctx); err != nil {
				b.Errorf("Release: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(highest.Load()), "max-held")
}
