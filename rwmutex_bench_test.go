package redsync

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkRWMutex: one goroutine takes and releases a read lock, or the
// write lock, on one name, on 1, 3 and 5 servers, beside a Mutex's
// Lock+Unlock (BenchmarkLockUnlock).
func BenchmarkRWMutex(b *testing.B) {
	for _, n := range []int{1, 3, 5} {
		pools := benchPools(b, n)
		rs := New(pools...)
		b.Cleanup(rs.Wait)
		ctx := context.Background()
		rw := rs.NewRWMutex("bench:rwmutex")
		b.Run(fmt.Sprintf("RLock+RUnlock/N=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := rw.RLockContext(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := rw.RUnlockContext(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("Lock+Unlock/N=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := rw.LockContext(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := rw.UnlockContext(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		m := rs.NewMutex("bench:rwmutex:plain")
		b.Run(fmt.Sprintf("Mutex/N=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := m.LockContext(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := m.UnlockContext(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
