package redsync

import (
	"context"
	"fmt"
	"testing"

	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// benchPools starts n redis-servers and returns a go-redis pool for each,
// closed when the benchmark ends.
func benchPools(b *testing.B, n int) []redis.Pool {
	b.Helper()
	pools := make([]redis.Pool, n)
	for i, s := range redistest.Start(b, n) {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		b.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	return pools
}

// BenchmarkLockUnlock: one goroutine locks and unlocks one name, on 1 and 3
// servers: the first try's path (the bench module compares it with other
// libraries).
func BenchmarkLockUnlock(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			rs := New(benchPools(b, n)...)
			b.Cleanup(rs.Wait)
			m := rs.NewMutex("bench:lockunlock")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if err := m.LockContext(ctx); err != nil {
					b.Fatalf("Lock: %v", err)
				}
				if _, err := m.UnlockContext(ctx); err != nil {
					b.Fatalf("Unlock: %v", err)
				}
			}
		})
	}
}

// BenchmarkContended: four goroutines (two per GOMAXPROCS on 2 cores) of one
// process lock and unlock one name on 3 servers, each with a Mutex of its
// own: the acquire loop's waiting path (queue, hand-over, wake-ups). ns/op
// is wall time per acquisition.
func BenchmarkContended(b *testing.B) {
	rs := New(benchPools(b, 3)...)
	b.Cleanup(rs.Wait)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		m := rs.NewMutex("bench:contended", WithTries(1000))
		for pb.Next() {
			if err := m.LockContext(ctx); err != nil {
				b.Errorf("Lock: %v", err)
				return
			}
			if _, err := m.UnlockContext(ctx); err != nil {
				b.Errorf("Unlock: %v", err)
				return
			}
		}
	})
}
