package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// runThroughput is scenario 2: many goroutines, each locking and unlocking
// its own key as fast as it can, for a fixed time.
func runThroughput(ctx context.Context, e *env) ([]section, error) {
	var subjects []*subject
	defer func() { closeSubjects(subjects) }()
	workers := e.cfg.ThroughputWorkers
	var mutexes [][]mutex
	for _, n := range e.cfg.Servers {
		for _, lib := range librariesFor(n) {
			s := e.openSubject(lib, n, lockOptions{}, "")
			subjects = append(subjects, s)
			ms := make([]mutex, workers)
			for w := range ms {
				ms[w] = s.locker.newMutex(s.key("throughput", w))
				if err := warmup(ctx, ms[w], max(1, e.cfg.Warmup/workers)); err != nil {
					return nil, fmt.Errorf("%s N=%d: %w", s.label, n, err)
				}
			}
			mutexes = append(mutexes, ms)
		}
	}

	type figures struct {
		rate      series
		ops, errs int
	}
	figs := make([]figures, len(subjects))
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(subjects), r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s := subjects[i]
			e.progress("  round %d/%d: %s N=%d", r+1, e.cfg.Rounds, s.label, s.n)
			ops, errs, elapsed := hammer(ctx, mutexes[i], e.cfg.ThroughputTime)
			figs[i].rate = append(figs[i].rate, float64(ops)/elapsed.Seconds())
			figs[i].ops += ops
			figs[i].errs += errs
		}
	}

	sec := section{
		title: fmt.Sprintf("2. Throughput (%d goroutines, each on its own key)", workers),
		about: fmt.Sprintf("%d goroutines lock and unlock their own keys in a loop for %v per round, through one set of clients per library. "+
			"ops/s counts completed Lock+Unlock pairs over the time until the last goroutine stopped.", workers, e.cfg.ThroughputTime),
		header: []string{"N", "library", "Lock+Unlock/s", "÷ floor", "÷ redsync", "errors"},
	}
	ratio := func(i int, label string) string {
		j, ok := findSubject(subjects, label, subjects[i].n)
		if !ok {
			return "–"
		}
		return fmtRatio(figs[i].rate.median(), figs[j].rate.median())
	}
	for i, s := range subjects {
		sec.addRow(s.n, s.label, fmtRateRange(figs[i].rate), ratio(i, libFloor), ratio(i, libRedsync), figs[i].errs)
	}
	return []section{sec}, nil
}

// hammer runs one goroutine per mutex, each locking and unlocking its
// mutex until d has passed, and returns the Lock+Unlock pairs completed,
// the failed ones and the time until every goroutine stopped.
func hammer(ctx context.Context, mutexes []mutex, d time.Duration) (ops, errs int, elapsed time.Duration) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards ops and errs
		start    = time.Now()
		deadline = start.Add(d)
	)
	for _, m := range mutexes {
		wg.Add(1)
		go func(m mutex) {
			defer wg.Done()
			n, failed := 0, 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				err := m.lock(ctx)
				if err == nil {
					err = m.unlock(ctx)
				}
				if err != nil {
					failed++
					continue
				}
				n++
			}
			mu.Lock()
			ops += n
			errs += failed
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	return ops, errs, time.Since(start)
}
