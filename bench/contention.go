package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// labelRedislockRetry names redislock with a retry strategy: its default is
// to try once, which makes Lock a TryLock.
const labelRedislockRetry = "redislock (retry 16–256 ms)"

// acquisition is one successful Lock in the contention scenario.
type acquisition struct {
	worker    int
	locked    time.Time // Lock returned
	unlocking time.Time // Unlock was called
}

// contentionRound is what one round of the contention scenario measured.
type contentionRound struct {
	acquisitions             []acquisition
	waits                    []time.Duration // Lock call to return, successful ones
	perWorker                []int
	giveUps                  int // Lock errors before the end of the round
	unlockErrs               int
	overlaps                 int // acquisitions that found another holder inside
	reacquired               float64
	gapP50, waitP50, waitP99 time.Duration
}

// contend runs workers goroutines on one key for d: each locks, holds the
// lock for hold, unlocks and at once tries again.
func contend(ctx context.Context, l locker, key string, workers int, d, hold time.Duration) contentionRound {
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		inside   atomic.Int32
		overlaps atomic.Int32
		wg       sync.WaitGroup
		mu       sync.Mutex // guards res
		res      = contentionRound{perWorker: make([]int, workers)}
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			m := l.newMutex(key)
			var (
				acqs        []acquisition
				waits       []time.Duration
				giveUps     int
				unlockFails int
			)
			for runCtx.Err() == nil {
				start := time.Now()
				err := m.lock(runCtx)
				locked := time.Now()
				if err != nil {
					if runCtx.Err() == nil {
						giveUps++
					}
					continue
				}
				counted := runCtx.Err() == nil
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				time.Sleep(hold)
				inside.Add(-1)
				unlocking := time.Now()
				if counted {
					acqs = append(acqs, acquisition{worker: w, locked: locked, unlocking: unlocking})
					waits = append(waits, locked.Sub(start))
				}
				// Not runCtx: the lock must be released even after the end.
				if err := m.unlock(ctx); err != nil {
					unlockFails++
				}
			}
			mu.Lock()
			res.acquisitions = append(res.acquisitions, acqs...)
			res.waits = append(res.waits, waits...)
			res.perWorker[w] = len(acqs)
			res.giveUps += giveUps
			res.unlockErrs += unlockFails
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	res.overlaps = int(overlaps.Load())

	acqs := res.acquisitions
	slices.SortFunc(acqs, func(a, b acquisition) int { return a.locked.Compare(b.locked) })
	var gaps []time.Duration
	same := 0
	for i := 1; i < len(acqs); i++ {
		gaps = append(gaps, acqs[i].locked.Sub(acqs[i-1].unlocking))
		if acqs[i].worker == acqs[i-1].worker {
			same++
		}
	}
	res.gapP50, _ = latencies(gaps)
	res.waitP50, res.waitP99 = latencies(res.waits)
	res.reacquired = float64(same) / float64(max(1, len(acqs)-1))
	return res
}

// runContention is scenario 3: goroutines fighting for one key.
func runContention(ctx context.Context, e *env) ([]section, error) {
	var subjects []*subject
	defer func() { closeSubjects(subjects) }()
	for _, n := range e.cfg.Servers {
		for _, lib := range librariesFor(n, libFloor) {
			opts, label := lockOptions{}, ""
			if lib.name == libRedislock {
				opts.retry, label = true, labelRedislockRetry
			}
			s := e.openSubject(lib, n, opts, label)
			subjects = append(subjects, s)
			if err := warmup(ctx, s.locker.newMutex(s.key("contention", "warmup")), e.cfg.Warmup); err != nil {
				return nil, fmt.Errorf("%s N=%d: %w", s.label, n, err)
			}
		}
	}

	type figures struct {
		rate, minW, maxW, fairness, reacq, giveUps, overlaps, unlockErrs series
		waitP50, waitP99, gapP50                                         durSeries
	}
	figs := make([]figures, len(subjects))
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(subjects), r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s := subjects[i]
			e.progress("  round %d/%d: %s N=%d", r+1, e.cfg.Rounds, s.label, s.n)
			// A key per round: a Lock cut off by the end of a round may
			// leave a key behind (redsync does), which must not slow the
			// next round down.
			res := contend(ctx, s.locker, s.key("contention", r), e.cfg.ContentionWorkers, e.cfg.ContentionTime, e.cfg.ContentionHold)
			f := &figs[i]
			f.rate = append(f.rate, float64(len(res.acquisitions))/e.cfg.ContentionTime.Seconds())
			lo, hi := slices.Min(res.perWorker), slices.Max(res.perWorker)
			f.minW = append(f.minW, float64(lo))
			f.maxW = append(f.maxW, float64(hi))
			f.fairness = append(f.fairness, float64(lo)/float64(max(1, hi)))
			f.reacq = append(f.reacq, res.reacquired)
			f.giveUps = append(f.giveUps, float64(res.giveUps))
			f.overlaps = append(f.overlaps, float64(res.overlaps))
			f.unlockErrs = append(f.unlockErrs, float64(res.unlockErrs))
			f.waitP50 = append(f.waitP50, res.waitP50)
			f.waitP99 = append(f.waitP99, res.waitP99)
			f.gapP50 = append(f.gapP50, res.gapP50)
		}
	}

	sec := section{
		title: fmt.Sprintf("3. Contention (%d goroutines on one key, holding it %v)", e.cfg.ContentionWorkers, e.cfg.ContentionHold),
		about: fmt.Sprintf("%d goroutines, each with its own Mutex on the same key, lock, hold the lock %v, unlock and at once try again, for %v per round. "+
			"Lock wait is the time Lock took when it succeeded. The hand-off gap is the time from one holder calling Unlock to the next holder's Lock returning. "+
			"Per goroutine: the fewest and most acquisitions of one goroutine in a round (fairness = fewest ÷ most). "+
			"Releaser re-acquires: share of acquisitions made by the goroutine that held the lock just before. "+
			"Give-ups: Lock calls that returned an error before the end of the round. Overlaps: acquisitions that found another holder inside (must be 0). "+
			"redislock's default is not to retry, so it runs here with ExponentialBackoff(16 ms, 256 ms).",
			e.cfg.ContentionWorkers, e.cfg.ContentionHold, e.cfg.ContentionTime),
		header: []string{"N", "library", "acquisitions/s", "÷ redsync", "Lock wait p50", "Lock wait p99", "hand-off gap p50",
			"per goroutine min–max", "fairness", "releaser re-acquires", "give-ups", "overlaps"},
	}
	for i, s := range subjects {
		f := figs[i]
		ratio := "–"
		if j, ok := findSubject(subjects, libRedsync, s.n); ok {
			ratio = fmtRatio(f.rate.median(), figs[j].rate.median())
		}
		sec.addRow(s.n, s.label, fmtRateRange(f.rate), ratio, fmtDurRange(f.waitP50), fmtDurRange(f.waitP99), fmtDurRange(f.gapP50),
			sig3(f.minW.median())+"–"+sig3(f.maxW.median()), sig3(f.fairness.median()), fmtPercent(f.reacq.median()),
			fmtCount(f.giveUps), fmtCount(f.overlaps))
		if f.unlockErrs.max() > 0 {
			sec.notes = append(sec.notes, fmt.Sprintf("%s N=%d: Unlock failed %s times per round.", s.label, s.n, fmtCount(f.unlockErrs)))
		}
	}
	return []section{sec}, nil
}
