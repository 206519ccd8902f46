package redsync

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkElectionResignHandOver: two candidates in two Redsyncs (two
// processes) pass leadership back and forth; an op is one Resign and the
// other candidate's Campaign returning as leader, proclaimed, with the
// resigned one queued again. handover-ms is the median time from the start
// of Resign to the next leader's Campaign returning.
func BenchmarkElectionResignHandOver(b *testing.B) {
	for _, n := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			pools := benchPools(b, n)
			rsA, rsB := New(pools...), New(pools...)
			b.Cleanup(rsA.Wait)
			b.Cleanup(rsB.Wait)
			const name = "bench:election"
			leader, waiter := rsA.NewElection(name), rsB.NewElection(name)
			leaderRS, waiterRS := rsA, rsB
			ctx := context.Background()
			if err := leader.Campaign(ctx, "a"); err != nil {
				b.Fatal(err)
			}
			campaign := func(e *Election, rs *Redsync) chan error {
				won := make(chan error, 1)
				go func() { won <- e.Campaign(ctx, "v") }()
				for {
					s := rs.handoff.state(name)
					if s.Queued > 0 && s.Confirmed == s.Servers && s.HeadQueued && !s.HeadWoken {
						return won
					}
					time.Sleep(100 * time.Microsecond)
				}
			}
			won := campaign(waiter, waiterRS)
			var handovers []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := leader.Resign(ctx); err != nil {
					b.Fatal(err)
				}
				if err := <-won; err != nil {
					b.Fatal(err)
				}
				handovers = append(handovers, time.Since(start))
				leader, waiter = waiter, leader
				leaderRS, waiterRS = waiterRS, leaderRS
				b.StopTimer()
				won = campaign(waiter, waiterRS)
				b.StartTimer()
			}
			b.StopTimer()
			if err := leader.Resign(ctx); err != nil {
				b.Fatal(err)
			}
			<-won
			if err := waiter.Resign(ctx); err != nil {
				b.Fatal(err)
			}
			slices.Sort(handovers)
			b.ReportMetric(float64(handovers[len(handovers)/2].Microseconds())/1000, "handover-ms")
		})
	}
}
