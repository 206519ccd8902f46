package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkLockUnlock is scenario 1 as a standard benchmark: one goroutine
// locks and unlocks one key, for every library on 1, 3 and 5 servers. Each
// sub-benchmark has go-redis clients of its own with default options and
// reuses one Mutex; besides time and allocations it reports the goroutines
// started per Lock+Unlock. Compare runs with benchstat:
//
//	go test -run '^$' -bench LockUnlock -benchmem -count 6 ./... | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkLockUnlock(b *testing.B) {
	f := testFleet(b, maxServers)
	for _, n := range []int{1, 3, 5} {
		for _, lib := range librariesFor(n) {
			b.Run(fmt.Sprintf("%s/N=%d", lib.name, n), func(b *testing.B) {
				clients := f.clients(n)
				defer closeClients(clients)
				ctx, cancel := requestContext()
				defer cancel()
				m := lib.open(clients, lockOptions{}).newMutex(fmt.Sprintf("bench:go:%s:N%d", lib.name, n))
				if err := warmup(ctx, m, 20); err != nil {
					b.Fatal(err)
				}
				created := goroutinesCreated()
				lockUnlockLoop(b, ctx, m)
				b.ReportMetric(float64(goroutinesCreated()-created)/float64(b.N), "goroutines/op")
			})
		}
	}
}

// requestContext returns a context like a service's request context, which
// can be cancelled, as lockbench's is: libraries may take a shortcut for
// context.Background() that services rarely get.
func requestContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// lockUnlockLoop locks and unlocks m for the benchmark's iterations,
// reporting allocations.
func lockUnlockLoop(b *testing.B, ctx context.Context, m mutex) {
	b.ReportAllocs()
	for b.Loop() {
		if err := m.lock(ctx); err != nil {
			b.Fatalf("Lock: %v", err)
		}
		if err := m.unlock(ctx); err != nil {
			b.Fatalf("Unlock: %v", err)
		}
	}
}

// BenchmarkThroughput is scenario 2 as a standard benchmark: 16 goroutines
// (8 per GOMAXPROCS on this 2-core machine; b.SetParallelism), each locking
// and unlocking a key of its own, for this library and redsync on 1 and 5
// servers. ns/op is wall time per Lock+Unlock of the whole group; profile
// one library with -cpuprofile and a -bench pattern that selects it.
func BenchmarkThroughput(b *testing.B) {
	f := testFleet(b, maxServers)
	for _, n := range []int{1, 5} {
		for _, lib := range librariesFor(n) {
			if lib.name != libQuorumlock && lib.name != libRedsync {
				continue
			}
			b.Run(fmt.Sprintf("%s/N=%d", lib.name, n), func(b *testing.B) {
				clients := f.clients(n)
				defer closeClients(clients)
				ctx, cancel := requestContext()
				defer cancel()
				l := lib.open(clients, lockOptions{})
				var next int64
				b.ReportAllocs()
				b.SetParallelism(16 / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					m := l.newMutex(fmt.Sprintf("bench:tput:%s:N%d:%d", lib.name, n, atomic.AddInt64(&next, 1)))
					for pb.Next() {
						if err := m.lock(ctx); err != nil {
							b.Errorf("Lock: %v", err)
							return
						}
						if err := m.unlock(ctx); err != nil {
							b.Errorf("Unlock: %v", err)
							return
						}
					}
				})
			})
		}
	}
}
