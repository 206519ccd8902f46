package bench

import (
	"context"
	"testing"

	"github.com/quorumlock/redsync"
)

// BenchmarkRWMutexReaders: 16 goroutines on 3 servers, each with an
// RWMutex of its own on one name, take and release read locks, which
// share; ns/op is wall time per read lock, across all goroutines. The
// Mutex case is the same 16 goroutines on a plain Mutex of that name,
// which excludes, as the baseline a read lock is there to beat:
//
//	go test -run '^$' -bench RWMutexReaders -benchmem -count 6 . | tee new.txt
func BenchmarkRWMutexReaders(b *testing.B) {
	f := testFleet(b, 3)
	run := func(name string, newLock func(rs *redsync.Redsync) (func(ctx context.Context) error, func(ctx context.Context) error)) {
		b.Run(name, func(b *testing.B) {
			clients := f.clients(3)
			defer closeClients(clients)
			rs := newQuorumlock(clients)
			defer rs.Wait()
			ctx, cancel := requestContext()
			defer cancel()
			b.ReportAllocs()
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				lock, unlock := newLock(rs)
				for pb.Next() {
					if err := lock(ctx); err != nil {
						b.Errorf("acquire: %v", err)
						return
					}
					if err := unlock(ctx); err != nil {
						b.Errorf("release: %v", err)
						return
					}
				}
			})
		})
	}
	run("RLock+RUnlock", func(rs *redsync.Redsync) (func(ctx context.Context) error, func(ctx context.Context) error) {
		rw := rs.NewRWMutex("bench:rw:readers")
		return rw.RLockContext, func(ctx context.Context) error { _, err := rw.RUnlockContext(ctx); return err }
	})
	run("Mutex", func(rs *redsync.Redsync) (func(ctx context.Context) error, func(ctx context.Context) error) {
		m := rs.NewMutex("bench:rw:readers:mutex", redsync.WithTries(1<<20))
		return m.LockContext, func(ctx context.Context) error { _, err := m.UnlockContext(ctx); return err }
	})
}
