package redsync

import (
	"context"
	"errors"
	mathrand "math/rand"
	"time"
)

// TryLock tries once to acquire the lock and returns at once, acquired or
// not.
func (m *Mutex) TryLock() error {
	return m.TryLockContext(context.Background())
}

// TryLockContext tries once to acquire the lock and returns at once,
// acquired or not; it returns earlier when ctx ends.
func (m *Mutex) TryLockContext(ctx context.Context) error {
	return m.lockContext(ctx, 1)
}

// Lock acquires the lock, trying up to the number of tries set with
// WithTries and waiting at most the retry delay (WithRetryDelay) between
// tries. While it waits it is woken, and tries again without spending a
// try, when the lock is released or its key must have expired (see
// WithHandoff). On failure it returns the last try's error (an *ErrTaken
// when a quorum of servers held the key for somebody else) or ErrFailed,
// and leaves nothing on any server; Lock may be called again.
func (m *Mutex) Lock() error {
	return m.LockContext(context.Background())
}

// LockContext is Lock that gives up when ctx ends: it then returns an error
// that matches both ErrFailed and ctx.Err() with errors.Is, within a few
// milliseconds of the cancellation. Whatever a try had acquired is
// released on a context of its own, so a cancelled caller leaves nothing
// behind. A nil ctx is rejected with an *ArgumentError.
func (m *Mutex) LockContext(ctx context.Context) error {
	return m.lockContext(ctx, m.cfg.tries)
}

func (m *Mutex) lockContext(ctx context.Context, tries int) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if m.obs == nil {
		_, err := m.acquireLoop(ctx, tries)
		return err
	}
	start := time.Now()
	ctx = m.observeStart(ctx, OpLock, tries)
	count, err := m.acquireLoop(ctx, tries)
	e := DoneEvent{Op: OpLock, Name: m.name, Err: err, Canceled: canceledBy(ctx, err), Tries: count.tries, Attempts: count.attempts}
	now := time.Now()
	e.Duration = now.Sub(start)
	if err == nil {
		e.Validity = m.Until().Sub(now)
		e.Token = m.Token()
	}
	m.obs.Done(ctx, e)
	return err
}

// lockCount counts the tries (as WithTries counts them: the retry delays
// waited, plus one) and the attempts of a Lock call.
type lockCount struct {
	tries, attempts int
}

// acquireLoop is the Redlock acquire loop of lockContext: it attempts to
// acquire the lock until an attempt does, the tries run out or ctx ends.
func (m *Mutex) acquireLoop(ctx context.Context, tries int) (count lockCount, err error) {
	var (
		lastErr error
		w       *waiter // this call's place in the queue for the name, once it waits
		timer   *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if w != nil {
			var until time.Time
			if err == nil {
				until = m.Until()
			}
			w.leave(err == nil, until)
		}
	}()
	// count.tries counts the retry delays waited so far, plus one;
	// attempts made on a wake-up within a delay do not count.
	count.tries = 1
	var a lockAttempt
	if tries > 1 && m.cfg.handoff && m.rs.canListen {
		// Behind waiters of this process, a first try would find the
		// lock held or reserved for them: queue at once.
		w = m.rs.handoff.joinBehind(m)
	}
	if w != nil {
		a = lockAttempt{freeIn: -1}
	} else {
		// A refused first try asks for the key's time to live only if
		// Lock may wait for it.
		a, err = m.attempt(ctx, false, m.cfg.handoff && tries > 1, nil, count, "")
	}
	var (
		periodEnd time.Time
		// errorRetries counts the early attempts made in a row because a
		// server failed (see below).
		errorRetries uint
		// next is the value of the next attempt, made while waiting so
		// that a releaser can hand the lock over to it; "" until then.
		next string
	)
	for {
		if !a.start.IsZero() {
			count.attempts++
		}
		if err != nil {
			return count, err
		}
		if a.held {
			return count, nil
		}
		if a.res.ctxErr != nil {
			awaitReleased(a.released, cancelCleanupWait)
			return count, lockAborted(a.res.ctxErr, a.res.err)
		}
		if a.res.err != nil {
			lastErr = a.res.err
		}
		if count.tries >= tries {
			if count.attempts == 0 {
				// Queued behind other waiters from the start, it never
				// tried: one plain try before giving up, so that the
				// error says why (an *ErrTaken, as redsync would).
				a, err = m.attempt(ctx, false, false, w, count, next)
				next = ""
				continue
			}
			awaitReleased(a.released, m.opTimeout())
			if lastErr != nil {
				return count, lastErr
			}
			return count, ErrFailed
		}
		if w == nil && m.cfg.handoff && m.rs.canListen {
			w = m.rs.handoff.join(m, a.start)
		}
		if periodEnd.IsZero() {
			delay := m.cfg.delayFunc(count.tries)
			if delay < 0 {
				delay = 0
			}
			periodEnd = time.Now().Add(delay)
		}
		// The waiter at the head of the queue (or any waiter when nobody
		// announces releases) also wakes when the key must have expired
		// on a quorum of servers.
		head := w == nil || w.head()
		wakeAt := periodEnd
		if a.freeIn >= 0 && head {
			free := a.start.Add(a.freeIn + time.Duration(mathrand.Int63n(int64(time.Millisecond))))
			if free.Before(wakeAt) {
				wakeAt = free
			}
		}
		// A server that failed the attempt (a connection broken by a
		// restart, say) may not announce the next release either: try
		// again soon rather than only at the end of the delay, backing off
		// while servers keep failing.
		var failed *RedisError
		if w != nil && errors.As(a.res.err, &failed) {
			if errorRetries > 5 {
				errorRetries = 5
			}
			if soon := time.Now().Add(errorRetryPause << errorRetries); soon.Before(wakeAt) {
				wakeAt = soon
			}
			errorRetries++
		} else {
			errorRetries = 0
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(wakeAt))
		} else {
			timer.Reset(time.Until(wakeAt))
		}
		var wake chan struct{}
		if w != nil {
			wake = w.wake
			// While it waits, a releaser of this process may hand the
			// lock over to it, with the value of its next attempt.
			if next == "" && !m.cfg.fencing && !m.cfg.shuffle {
				next, _ = m.cfg.genValueFunc() // a failure shows in the attempt
			}
			w.idle(next)
		}
		select {
		case <-ctx.Done():
			return count, lockAborted(ctx.Err(), lastErr)
		case <-wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
			if wakeAt.Before(periodEnd) {
				break // the key expired: an attempt that does not count
			}
			count.tries++
			periodEnd = time.Time{}
			if !head {
				// Queued behind other waiters of this process, which
				// get the lock first: the delay counts, the attempt is
				// theirs to make.
				continue
			}
		}
		a, err = m.attempt(ctx, m.cfg.handoff, m.cfg.handoff, w, count, next)
		next = ""
	}
}

// lockAborted is Lock's error when the caller's context ended.
func lockAborted(ctxErr, lastErr error) error {
	return errors.Join(ErrFailed, ctxErr, lastErr)
}

// errorRetryPause is how soon a waiter tries again after a server failed
// its attempt; it doubles while servers keep failing, up to 32 times.
const errorRetryPause = 200 * time.Millisecond
