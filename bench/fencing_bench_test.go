package bench

import (
	"fmt"
	"testing"
)

// BenchmarkFencing is what fencing tokens cost: this library's uncontended
// Lock+Unlock with and without WithFencing, on 1, 3 and 5 servers. The
// fenced acquire is a script instead of SET NX and is followed by a
// write-back round, so expect about one round trip more. Compare with
// benchstat after splitting the output by variant:
//
//	go test -run '^$' -bench Fencing -benchmem -count 6 . | tee fencing.txt
func BenchmarkFencing(b *testing.B) {
	f := testFleet(b, maxServers)
	for _, n := range []int{1, 3, 5} {
		for _, fencing := range []bool{false, true} {
			variant := "plain"
			if fencing {
				variant = "fencing"
			}
			b.Run(fmt.Sprintf("%s/N=%d", variant, n), func(b *testing.B) {
				clients := f.clients(n)
				defer closeClients(clients)
				ctx, cancel := requestContext()
				defer cancel()
				m := openQuorumlock(clients, lockOptions{fencing: fencing}).newMutex(fmt.Sprintf("bench:fencing:%s:N%d", variant, n))
				if err := warmup(ctx, m, 20); err != nil {
					b.Fatal(err)
				}
				lockUnlockLoop(b, ctx, m)
			})
		}
	}
}
