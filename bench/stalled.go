package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// settleTimeout bounds the wait for a library's background work (late
// replies, releases retried on a stalled server) after the servers resumed.
const settleTimeout = 30 * time.Second

// labelFloorAtQuorum names the floor that stops waiting once a quorum
// answered, the only way a raw client gets past a stalled server quickly.
const labelFloorAtQuorum = "floor (returns at quorum)"

// stalledSample is one timed Lock+Unlock.
type stalledSample struct {
	lock, unlock time.Duration
	err          error
}

func (s stalledSample) total() time.Duration { return s.lock + s.unlock }

// timeLockUnlock locks and unlocks m once, timing each step.
func timeLockUnlock(ctx context.Context, m mutex) stalledSample {
	start := time.Now()
	err := m.lock(ctx)
	var s stalledSample
	s.lock = time.Since(start)
	if err != nil {
		s.err = err
		return s
	}
	start = time.Now()
	s.err = m.unlock(ctx)
	s.unlock = time.Since(start)
	return s
}

// withStalled runs measure on a fresh subject of lib over all servers while
// the servers in stalled are stopped, then resumes them and waits until the
// library's background work is over before closing its clients.
func (e *env) withStalled(ctx context.Context, lib library, opts lockOptions, label string, stalled []int,
	measure func(s *subject) error) (settled bool, err error) {
	s := e.openSubject(lib, maxServers, opts, label)
	defer s.close()
	if err := warmup(ctx, s.locker.newMutex(s.key("warmup")), min(e.cfg.Warmup, 20)); err != nil {
		return false, fmt.Errorf("%s: %w", s.label, err)
	}
	base := runtime.NumGoroutine()
	if err := e.fleet.pause(stalled...); err != nil {
		return false, err
	}
	measureErr := measure(s)
	if err := e.fleet.resume(stalled...); err != nil {
		return false, err
	}
	if measureErr != nil {
		return false, fmt.Errorf("%s: %w", s.label, measureErr)
	}
	return settle(ctx, base, settleTimeout), nil
}

// runStalled is scenario 5: uncontended Lock+Unlock on 5 servers, one of
// them stopped with SIGSTOP (it accepts connections and answers nothing).
func runStalled(ctx context.Context, e *env) ([]section, error) {
	stalled := []int{maxServers - 1}
	type figures struct {
		total, lock, unlock          []time.Duration // all samples
		p50, p99, lockP50, unlockP50 durSeries
		samples, errs                int
		capped                       bool
		unsettled                    bool
	}
	type variant struct {
		lib   library
		opts  lockOptions
		label string
		slow  bool // sampled a few times in all, each capped at StalledCap
	}
	variants := []variant{
		{lib: libraryNamed(libQuorumlock), label: libQuorumlock},
		{lib: libraryNamed(libRedsync), label: libRedsync, slow: true},
		{lib: libraryNamed(libFloor), opts: lockOptions{floorAtQuorum: true}, label: labelFloorAtQuorum},
	}
	figs := make([]figures, len(variants))
	slowPerRound := (e.cfg.StalledSlowSamples + e.cfg.Rounds - 1) / e.cfg.Rounds
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(variants), r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			v, f := variants[i], &figs[i]
			samples := e.cfg.StalledSamples
			if v.slow {
				samples = min(slowPerRound, e.cfg.StalledSlowSamples-f.samples)
				if f.capped || samples <= 0 {
					continue
				}
			}
			e.progress("  round %d/%d: %s, %d Lock+Unlock with server %d stalled", r+1, e.cfg.Rounds, v.label, samples, stalled[0])
			var round []stalledSample
			settled, err := e.withStalled(ctx, v.lib, v.opts, v.label, stalled, func(s *subject) error {
				m := s.locker.newMutex(s.key("stalled", r))
				for k := 0; k < samples; k++ {
					if !v.slow {
						round = append(round, timeLockUnlock(ctx, m))
						continue
					}
					// The sample runs in a goroutine of its own so that it
					// can be abandoned at the cap; it ends once the server
					// resumes, before withStalled returns.
					done := make(chan stalledSample, 1)
					go func() { done <- timeLockUnlock(ctx, m) }()
					select {
					case smp := <-done:
						round = append(round, smp)
					case <-time.After(e.cfg.StalledCap):
						f.capped = true
						f.samples++
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			f.unsettled = f.unsettled || !settled
			var tot, lk, ul []time.Duration
			for _, smp := range round {
				f.samples++
				if smp.err != nil {
					f.errs++
				}
				tot = append(tot, smp.total())
				lk = append(lk, smp.lock)
				ul = append(ul, smp.unlock)
			}
			f.total, f.lock, f.unlock = append(f.total, tot...), append(f.lock, lk...), append(f.unlock, ul...)
			if len(tot) > 0 && !v.slow {
				p50, p99 := latencies(tot)
				lp50, _ := latencies(lk)
				up50, _ := latencies(ul)
				f.p50, f.p99 = append(f.p50, p50), append(f.p99, p99)
				f.lockP50, f.unlockP50 = append(f.lockP50, lp50), append(f.unlockP50, up50)
			}
		}
	}

	sec := section{
		title: "5. One of 5 servers stalled (SIGSTOP)",
		about: fmt.Sprintf("Uncontended Lock+Unlock on 5 servers while server %d is stopped: it accepts connections and answers nothing. "+
			"Default options for everyone; each library gets fresh clients per round (warmed up while all servers run), and the stalled server "+
			"is resumed after each round and the library's background work allowed to finish before the next. "+
			"%d samples per round for quorumlock and the floor; redsync %d in all, each abandoned after %v and shown as \"≥\" that if it did not finish. "+
			"The floor here stops waiting once a quorum answered (waiting for every server, it would wait for go-redis's read timeout).",
			stalled[0], e.cfg.StalledSamples, e.cfg.StalledSlowSamples, e.cfg.StalledCap),
		header: []string{"library", "samples", "Lock+Unlock p50", "Lock+Unlock p99", "Lock p50", "Unlock p50", "errors"},
	}
	for i, v := range variants {
		f := figs[i]
		var p50, p99, lp50, up50 string
		switch {
		case v.slow && f.capped && len(f.total) == 0:
			p50 = "≥ " + fmtDuration(e.cfg.StalledCap)
			p99, lp50, up50 = p50, "–", "–"
		case v.slow:
			// Few samples: the median and the slowest of all of them.
			tp50, tmax := latencies(f.total)
			lp, _ := latencies(f.lock)
			up, _ := latencies(f.unlock)
			p50, p99, lp50, up50 = fmtDuration(tp50), fmtDuration(tmax)+" (max)", fmtDuration(lp), fmtDuration(up)
			if f.capped {
				p99 = "≥ " + fmtDuration(e.cfg.StalledCap)
			}
		default:
			p50, p99, lp50, up50 = fmtDurRange(f.p50), fmtDurRange(f.p99), fmtDurRange(f.lockP50), fmtDurRange(f.unlockP50)
		}
		sec.addRow(v.label, f.samples, p50, p99, lp50, up50, f.errs)
		if f.unsettled {
			sec.notes = append(sec.notes, fmt.Sprintf("%s: background goroutines were still running %v after the server resumed.", v.label, settleTimeout))
		}
	}
	load, err := runStalledLoad(ctx, e, stalled)
	if err != nil {
		return nil, err
	}
	return []section{sec, load}, nil
}

// runStalledLoad is the second part of scenario 5: Lock+Unlock under load
// (ThroughputWorkers goroutines, each on its own key) while the server is
// stalled. Every request to the stalled server waits somewhere, on a
// goroutine, until it is given up: what counts is how much gets done and
// how many goroutines pile up meanwhile.
func runStalledLoad(ctx context.Context, e *env, stalled []int) (section, error) {
	type figures struct {
		rate, peak series
		errs       int
		unsettled  bool
	}
	variants := []struct {
		lib   library
		opts  lockOptions
		label string
	}{
		{lib: libraryNamed(libQuorumlock), label: libQuorumlock},
		{lib: libraryNamed(libFloor), opts: lockOptions{floorAtQuorum: true}, label: labelFloorAtQuorum},
	}
	figs := make([]figures, len(variants))
	workers := e.cfg.ThroughputWorkers
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(variants), r) {
			v, f := variants[i], &figs[i]
			e.progress("  round %d/%d: %s, %d goroutines for %v with server %d stalled", r+1, e.cfg.Rounds, v.label, workers, e.cfg.StalledLoadTime, stalled[0])
			settled, err := e.withStalled(ctx, v.lib, v.opts, v.label, stalled, func(s *subject) error {
				base := runtime.NumGoroutine()
				loadCtx, cancel := context.WithTimeout(ctx, e.cfg.StalledLoadTime)
				defer cancel()
				var (
					wg        sync.WaitGroup
					ops, errs int64
				)
				start := time.Now()
				for w := 0; w < workers; w++ {
					m := s.locker.newMutex(s.key("stalled-load", r, w))
					wg.Add(1)
					go func() {
						defer wg.Done()
						for loadCtx.Err() == nil {
							if smp := timeLockUnlock(loadCtx, m); smp.err != nil {
								if loadCtx.Err() == nil {
									atomic.AddInt64(&errs, 1)
								}
								continue
							}
							atomic.AddInt64(&ops, 1)
						}
					}()
				}
				peak := base
				tick := time.NewTicker(20 * time.Millisecond)
				for loadCtx.Err() == nil {
					select {
					case <-tick.C:
						if n := runtime.NumGoroutine(); n > peak {
							peak = n
						}
					case <-loadCtx.Done():
					}
				}
				tick.Stop()
				wg.Wait()
				f.rate = append(f.rate, float64(ops)/time.Since(start).Seconds())
				// The load's own goroutines and the ticker's are not
				// waiting for anything.
				f.peak = append(f.peak, float64(peak-base-workers))
				f.errs += int(errs)
				return ctx.Err()
			})
			if err != nil {
				return section{}, err
			}
			f.unsettled = f.unsettled || !settled
		}
	}
	sec := section{
		title: fmt.Sprintf("5b. One of 5 servers stalled, under load (%d goroutines, each on its own key)", workers),
		about: fmt.Sprintf("%d goroutines lock and unlock their own keys for %v per round on 5 servers while server %d is stopped. "+
			"Every request to the stopped server waits on a goroutine until it is given up: goroutines waiting is the peak number of "+
			"goroutines during the round beyond those before it and the load's own (sampled every 20 ms). quorumlock stops sending a "+
			"backlogged server the requests it cannot need (ErrBacklogged); the floor sends every command. redsync is left out: one of "+
			"its Lock+Unlock takes 10 s here (table above).",
			workers, e.cfg.StalledLoadTime, stalled[0]),
		header: []string{"library", "Lock+Unlock/s", "goroutines waiting (peak)", "errors"},
	}
	for i, v := range variants {
		f := figs[i]
		sec.addRow(v.label, fmtRateRange(f.rate), fmtCount(f.peak), f.errs)
		if f.unsettled {
			sec.notes = append(sec.notes, fmt.Sprintf("%s: background goroutines were still running %v after the server resumed.", v.label, settleTimeout))
		}
	}
	return sec, nil
}
