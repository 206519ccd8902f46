package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"time"
)

// maxSamples bounds the latencies kept per round of a single goroutine.
const maxSamples = 1 << 18

// uncontendedRound is what one round of Lock+Unlock on one goroutine
// measured.
type uncontendedRound struct {
	p50, p99                  time.Duration
	allocs, bytes, goroutines float64 // per Lock+Unlock
	ops, errs                 int
}

// goroutinesCreatedMetric counts the goroutines started since the program
// began.
const goroutinesCreatedMetric = "/sched/goroutines-created:goroutines"

// goroutinesCreated returns how many goroutines the program has started, or
// 0 when the runtime does not say.
func goroutinesCreated() uint64 {
	sample := []metrics.Sample{{Name: goroutinesCreatedMetric}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// measureLockUnlock locks and unlocks m for d (or until lat is full), one
// Lock+Unlock at a time, and measures each one and the allocations of the
// whole batch. lat is scratch space for the latencies.
func measureLockUnlock(ctx context.Context, m mutex, d time.Duration, lat []time.Duration) uncontendedRound {
	lat = lat[:0]
	var res uncontendedRound
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	goBefore := goroutinesCreated()
	deadline := time.Now().Add(d)
	for len(lat) < cap(lat) {
		start := time.Now()
		if start.After(deadline) {
			break
		}
		err := m.lock(ctx)
		if err == nil {
			err = m.unlock(ctx)
		}
		lat = append(lat, time.Since(start))
		if err != nil {
			res.errs++
		}
	}
	goAfter := goroutinesCreated()
	runtime.ReadMemStats(&after)
	res.ops = len(lat)
	res.p50, res.p99 = latencies(lat)
	if res.ops > 0 {
		res.allocs = float64(after.Mallocs-before.Mallocs) / float64(res.ops)
		res.bytes = float64(after.TotalAlloc-before.TotalAlloc) / float64(res.ops)
		res.goroutines = float64(goAfter-goBefore) / float64(res.ops)
	}
	return res
}

// runUncontended is scenario 1: Lock+Unlock on one goroutine, no
// contention, for every library on 1, 3 and 5 servers.
func runUncontended(ctx context.Context, e *env) ([]section, error) {
	var subjects []*subject
	defer func() { closeSubjects(subjects) }()
	var mutexes []mutex
	for _, n := range e.cfg.Servers {
		for _, lib := range librariesFor(n) {
			s := e.openSubject(lib, n, lockOptions{}, "")
			subjects = append(subjects, s)
			m := s.locker.newMutex(s.key("uncontended"))
			if err := warmup(ctx, m, e.cfg.Warmup); err != nil {
				return nil, fmt.Errorf("%s N=%d: %w", s.label, n, err)
			}
			mutexes = append(mutexes, m)
		}
	}

	type figures struct {
		p50, p99                  durSeries
		allocs, bytes, goroutines series
		ops, errs                 int
	}
	figs := make([]figures, len(subjects))
	lat := make([]time.Duration, 0, maxSamples)
	for r := 0; r < e.cfg.UncontendedRounds; r++ {
		for _, i := range rotate(len(subjects), r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s := subjects[i]
			e.progress("  round %d/%d: %s N=%d", r+1, e.cfg.UncontendedRounds, s.label, s.n)
			res := measureLockUnlock(ctx, mutexes[i], e.cfg.UncontendedTime, lat)
			f := &figs[i]
			f.p50 = append(f.p50, res.p50)
			f.p99 = append(f.p99, res.p99)
			f.allocs = append(f.allocs, res.allocs)
			f.bytes = append(f.bytes, res.bytes)
			f.goroutines = append(f.goroutines, res.goroutines)
			f.ops += res.ops
			f.errs += res.errs
		}
	}

	sec := section{
		title: "1. Uncontended Lock+Unlock (one goroutine)",
		about: fmt.Sprintf("One goroutine locks and unlocks one key for %v per round, %d rounds; every Lock+Unlock is timed. "+
			"Allocations are runtime.MemStats deltas over the round divided by the Lock+Unlock count; they include go-redis's own allocations, "+
			"which every library pays alike. Goroutines/op counts the goroutines started per Lock+Unlock (runtime/metrics), go-redis's included. One Mutex is reused for the whole round. "+
			"Ratios compare the p50 with the floor's and redsync's on the same N in the same round (measured seconds apart), and give the median over rounds: "+
			"paired by round, they are steadier than the p50s themselves on a shared machine.", e.cfg.UncontendedTime, e.cfg.UncontendedRounds),
		header: []string{"N", "library", "p50", "p99", "allocs/op", "B/op", "goroutines/op", "p50 ÷ floor", "p50 ÷ redsync", "ops", "errors"},
	}
	ratio := func(i int, label string) string {
		j, ok := findSubject(subjects, label, subjects[i].n)
		if !ok {
			return "–"
		}
		ratios := make(series, len(figs[i].p50))
		for r := range ratios {
			ratios[r] = float64(figs[i].p50[r]) / float64(figs[j].p50[r])
		}
		return fmtRatio(ratios.median(), 1)
	}
	for i, s := range subjects {
		f := figs[i]
		sec.addRow(s.n, s.label, fmtDurRange(f.p50), fmtDurRange(f.p99),
			sig3(f.allocs.median()), sig3(f.bytes.median()), sig3(f.goroutines.median()),
			ratio(i, libFloor), ratio(i, libRedsync), f.ops, f.errs)
	}
	return []section{sec}, nil
}
