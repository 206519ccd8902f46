package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// runRobustness is scenario 6: (a) a LockContext cancelled while a
// majority of servers is stalled, (b) keys left behind by fail-fast
// Lock+Unlock on healthy servers.
func runRobustness(ctx context.Context, e *env) ([]section, error) {
	a, err := runCancelledLock(ctx, e)
	if err != nil {
		return nil, err
	}
	b, err := runFailFastOrphans(ctx, e)
	if err != nil {
		return nil, err
	}
	return []section{a, b}, nil
}

// runCancelledLock is scenario 6a.
func runCancelledLock(ctx context.Context, e *env) (section, error) {
	stalled := []int{2, 3, 4}
	healthy := []int{0, 1}
	libs := []library{libraryNamed(libQuorumlock), libraryNamed(libRedsync)}
	type figures struct {
		returned                 durSeries
		healthyAfter, allResumed series
		ctxErr, acquired, capped int
		acquiredAfterCap         int // acquired once resumed after the cap
		unsettled                bool
	}
	figs := make([]figures, len(libs))
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(libs), r) {
			if err := ctx.Err(); err != nil {
				return section{}, err
			}
			lib, f := libs[i], &figs[i]
			e.progress("  round %d/%d: %s LockContext cancelled after %v, servers %v stalled", r+1, e.cfg.Rounds, lib.name, e.cfg.CancelAfter, stalled)
			s := e.openSubject(lib, maxServers, lockOptions{}, "")
			key := s.key("cancel", r)
			m := s.locker.newMutex(key)
			// A fresh Mutex per warm-up Lock+Unlock: redsync's fail-fast
			// Unlock returns while its goroutines still read the Mutex's
			// value, which its next Lock writes (a data race in redsync
			// that the race detector reports).
			for w := 0; w < min(e.cfg.Warmup, 20); w++ {
				if err := warmup(ctx, s.locker.newMutex(s.key("warmup", w)), 1); err != nil {
					s.close()
					return section{}, fmt.Errorf("%s: %w", lib.name, err)
				}
			}
			base := runtime.NumGoroutine()
			if err := e.fleet.pause(stalled...); err != nil {
				s.close()
				return section{}, err
			}
			lockCtx, cancel := context.WithTimeout(ctx, e.cfg.CancelAfter)
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- m.lock(lockCtx) }()
			var lockErr error
			returned := true
			select {
			case lockErr = <-done:
				f.returned = append(f.returned, time.Since(start))
			case <-time.After(e.cfg.StalledCap):
				returned = false
				f.capped++
			}
			cancel()
			right, countErr := e.fleet.countKeys(ctx, key, healthy...)
			if err := e.fleet.resume(stalled...); err != nil {
				s.close()
				return section{}, err
			}
			if !returned {
				lockErr = <-done
			}
			if countErr != nil {
				s.close()
				return section{}, countErr
			}
			switch {
			case lockErr == nil:
				f.acquired++
				if !returned {
					f.acquiredAfterCap++
				}
				_ = m.unlock(ctx)
			case errors.Is(lockErr, context.DeadlineExceeded):
				f.ctxErr++
			}
			time.Sleep(e.cfg.ResumeWait)
			later, err := e.fleet.countKeys(ctx, key)
			if err != nil {
				s.close()
				return section{}, err
			}
			f.healthyAfter = append(f.healthyAfter, float64(right))
			f.allResumed = append(f.allResumed, float64(later))
			f.unsettled = f.unsettled || !settle(ctx, base, settleTimeout)
			s.close()
		}
	}

	sec := section{
		title: "6a. LockContext cancelled while 3 of 5 servers are stalled",
		about: fmt.Sprintf("Servers %v are stopped (SIGSTOP); one LockContext whose context ends after %v. "+
			"Returned after: time from the call to its return. Keys right after: servers among the healthy %v still holding the lock key when Lock returned. "+
			"Keys after resume: servers (of 5) holding it %v after the stalled servers were resumed; a key there is a lock nobody owns until it expires (8 s). "+
			"One sample per round and library, default options, fresh clients each time.", stalled, e.cfg.CancelAfter, healthy, e.cfg.ResumeWait),
		header: []string{"library", "returned after", "error matches ctx.Err()", "keys right after (of 2)", "keys after resume (of 5)"},
	}
	for i, lib := range libs {
		f := figs[i]
		returned := fmtDurRange(f.returned)
		if f.capped > 0 {
			returned = fmt.Sprintf("≥ %s in %d of %d rounds; %s", fmtDuration(e.cfg.StalledCap), f.capped, e.cfg.Rounds, returned)
		}
		sec.addRow(lib.name, returned, fmt.Sprintf("%d of %d", f.ctxErr, e.cfg.Rounds), fmtCount(f.healthyAfter), fmtCount(f.allResumed))
		if f.acquired > 0 {
			sec.notes = append(sec.notes, fmt.Sprintf("%s: Lock succeeded in %d of %d rounds despite the cancelled context "+
				"(%d of them after it had not returned within %v and the servers were resumed).",
				lib.name, f.acquired, e.cfg.Rounds, f.acquiredAfterCap, e.cfg.StalledCap))
		}
		if f.unsettled {
			sec.notes = append(sec.notes, fmt.Sprintf("%s: background goroutines were still running %v after the servers resumed.", lib.name, settleTimeout))
		}
	}
	return sec, nil
}

// runFailFastOrphans is scenario 6b.
func runFailFastOrphans(ctx context.Context, e *env) (section, error) {
	libs := []library{libraryNamed(libQuorumlock), libraryNamed(libRedsync)}
	type figures struct {
		right, later series
		errs         int
		unsettled    bool
	}
	figs := make([]figures, len(libs))
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(libs), r) {
			if err := ctx.Err(); err != nil {
				return section{}, err
			}
			lib, f := libs[i], &figs[i]
			e.progress("  round %d/%d: %s, %d Lock+Unlock with WithFailFast(true)", r+1, e.cfg.Rounds, lib.name, e.cfg.FailFastOps)
			s := e.openSubject(lib, maxServers, lockOptions{failFast: true}, "")
			// A fresh Mutex per warm-up Lock+Unlock: redsync's fail-fast
			// Unlock returns while its goroutines still read the Mutex's
			// value, which its next Lock writes (a data race in redsync
			// that the race detector reports).
			for w := 0; w < min(e.cfg.Warmup, 20); w++ {
				if err := warmup(ctx, s.locker.newMutex(s.key("warmup", w)), 1); err != nil {
					s.close()
					return section{}, fmt.Errorf("%s: %w", lib.name, err)
				}
			}
			base := runtime.NumGoroutine()
			prefix := s.key("failfast", r)
			for k := 0; k < e.cfg.FailFastOps; k++ {
				m := s.locker.newMutex(fmt.Sprintf("%s:%d", prefix, k))
				err := m.lock(ctx)
				if err == nil {
					err = m.unlock(ctx)
				}
				if err != nil {
					f.errs++
				}
			}
			right, err := e.fleet.countKeys(ctx, prefix+":*")
			if err != nil {
				s.close()
				return section{}, err
			}
			time.Sleep(e.cfg.ResumeWait)
			later, err := e.fleet.countKeys(ctx, prefix+":*")
			if err != nil {
				s.close()
				return section{}, err
			}
			f.right = append(f.right, float64(right))
			f.later = append(f.later, float64(later))
			f.unsettled = f.unsettled || !settle(ctx, base, settleTimeout)
			s.close()
		}
	}
	sec := section{
		title: fmt.Sprintf("6b. Keys left behind by %d fail-fast Lock+Unlock (5 healthy servers)", e.cfg.FailFastOps),
		about: fmt.Sprintf("One goroutine locks and unlocks %d distinct keys in turn with WithFailFast(true), which returns as soon as a quorum answered. "+
			"Orphans: lock keys still present on any of the 5 servers (SCAN), counted right after the last Unlock and again %v later; "+
			"each is a lock nobody owns until it expires (8 s).", e.cfg.FailFastOps, e.cfg.ResumeWait),
		header: []string{"library", "orphan keys right after", fmt.Sprintf("orphan keys %v later", e.cfg.ResumeWait), "errors"},
	}
	for i, lib := range libs {
		f := figs[i]
		sec.addRow(lib.name+" (fail-fast)", fmtCount(f.right), fmtCount(f.later), f.errs)
		if f.unsettled {
			sec.notes = append(sec.notes, fmt.Sprintf("%s: background goroutines were still running %v after the last Unlock.", lib.name, settleTimeout))
		}
	}
	return sec, nil
}
