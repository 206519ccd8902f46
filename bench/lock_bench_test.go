package bench

import (
	"context"
	"fmt"
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
				ctx := context.Background()
				m := lib.open(clients, lockOptions{}).newMutex(fmt.Sprintf("bench:go:%s:N%d", lib.name, n))
				if err := warmup(ctx, m, 20); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				created := goroutinesCreated()
				for b.Loop() {
					if err := m.lock(ctx); err != nil {
						b.Fatalf("Lock: %v", err)
					}
					if err := m.unlock(ctx); err != nil {
						b.Fatalf("Unlock: %v", err)
					}
				}
				b.ReportMetric(float64(goroutinesCreated()-created)/float64(b.N), "goroutines/op")
			})
		}
	}
}
