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
func (m *Mutex) acquireLoop(ctx context.Context, tries int) (lockCount, error) {
	q := acquirer{m: m, ctx: ctx, tries: tries, count: lockCount{tries: 1}}
	err := q.run()
	q.leave(err)
	return q.count, err
}

// acquirer is the state of one acquireLoop, which keeps it on its stack.
type acquirer struct {
	m     *Mutex
	ctx   context.Context
	tries int // the tries the Lock call may make
	// count.tries counts the retry delays waited so far, plus one;
	// attempts made on a wake-up within a delay do not count.
	count lockCount
	w     *waiter     // this call's place in the queue for the name, once it waits
	timer *time.Timer // nil until the first wait
	// periodEnd is when the retry delay being waited ends; zero before it
	// starts.
	periodEnd time.Time
	// errorRetries counts the early attempts made in a row because a
	// server failed (see wakeAt).
	errorRetries uint
	lastErr      error // the last error an attempt reported
	// stint is the value this call queues with in the fleet queue, when
	// it waits there (see fleet.go); nil otherwise.
	stint *fleetStint
}

// A verdict is what the loop does after an attempt.
type verdict uint8

const (
	verdictWait       verdict = iota // wait, then attempt again
	verdictHeld                      // return: the lock is held
	verdictAborted                   // return: the caller's context ended
	verdictOutOfTries                // return: the tries ran out
	// verdictLastTry: the tries ran out for a Lock that queued behind
	// other waiters from the start and never tried. One plain try before
	// giving up makes the error say why (an *ErrTaken, as redsync's).
	verdictLastTry
)

// A wakeUp is why a wait ended.
type wakeUp uint8

const (
	wokeCanceled wakeUp = iota // the caller's context ended
	wokeSignaled               // the waiter was woken: released, or handed over
	// wokeEarly: the key must have expired by the replies, or a server
	// failed the attempt; the attempt does not count as a try.
	wokeEarly
	wokeDelayOver // the retry delay ran out: a try counts
	// wokeBehind: the retry delay ran out behind other waiters of this
	// process, which get the lock first: a try counts, the attempt is
	// theirs to make.
	wokeBehind
)

// run attempts until an attempt acquires the lock (nil), the tries run out
// or the caller's context ends.
func (q *acquirer) run() error {
	if q.queues() {
		return q.runQueued()
	}
	a, err := q.firstTry()
	for {
		if err != nil {
			return err
		}
		switch q.decide(a) {
		case verdictHeld:
			return nil
		case verdictAborted:
			awaitReleased(a.released, cancelCleanupWait)
			return lockAborted(a.res.ctxErr, a.res.err)
		case verdictOutOfTries:
			awaitReleased(a.released, q.m.opTimeout())
			return q.failure()
		case verdictLastTry:
			a, err = q.attempt(attemptPlain)
			continue
		}
		switch q.wait(q.wakeAt(a)) {
		case wokeCanceled:
			return lockAborted(q.ctx.Err(), q.lastErr)
		case wokeBehind:
			continue // a is decided again (it counted when it was made)
		}
		a, err = q.attempt(q.afterWait())
	}
}

// firstTry is the loop's first attempt. A Lock that may wait queues at
// once, without it, behind waiters of this process: it would find the lock
// held or reserved for them.
func (q *acquirer) firstTry() (lockAttempt, error) {
	if q.tries > 1 && q.listens() {
		q.w = q.m.rs.handoff.joinBehind(q.m.spec())
	}
	if q.w != nil {
		return lockAttempt{freeIn: -1}, nil
	}
	if q.m.cfg.handoff && q.tries > 1 {
		return q.attempt(attemptPlainTTL) // it may wait for the key's TTL
	}
	return q.attempt(attemptPlain)
}

// listens reports whether the Lock call may wait for announced releases.
func (q *acquirer) listens() bool {
	return q.m.cfg.handoff && q.m.rs.canListen
}

// afterWait is the kind of the attempts made after a wait.
func (q *acquirer) afterWait() attemptKind {
	if q.m.cfg.handoff {
		return attemptAfterWait
	}
	return attemptPlain
}

// attempt makes an attempt of the given kind, with the stint's value if
// any.
func (q *acquirer) attempt(kind attemptKind) (lockAttempt, error) {
	a, err := q.m.attempt(q.ctx, kind, q.w, q.count, q.stint)
	if !a.start.IsZero() {
		q.count.attempts++ // (one that contacted no server does not count)
	}
	return a, err
}

// decide says what follows a, an attempt that returned no error.
func (q *acquirer) decide(a lockAttempt) verdict {
	switch {
	case a.held:
		return verdictHeld
	case a.res.ctxErr != nil:
		return verdictAborted
	}
	if a.res.err != nil {
		q.lastErr = a.res.err
	}
	switch {
	case q.count.tries < q.tries:
		return verdictWait
	case q.count.attempts == 0:
		return verdictLastTry
	}
	return verdictOutOfTries
}

// failure is the error of a Lock call whose tries ran out.
func (q *acquirer) failure() error {
	if q.lastErr != nil {
		return q.lastErr
	}
	return ErrFailed
}

// wakeAt returns when to attempt again after a, which failed, and whether
// this call heads the queue of the waiters of this process (or waits
// alone). It joins the queue and starts the retry delay if needed.
func (q *acquirer) wakeAt(a lockAttempt) (time.Time, bool) {
	if q.w == nil && q.listens() {
		q.w = q.m.rs.handoff.join(q.m, a.start)
	}
	if q.periodEnd.IsZero() {
		q.periodEnd = time.Now().Add(max(q.m.cfg.delayFunc(q.count.tries), 0))
	}
	head := q.w == nil || q.w.head()
	wakeAt := q.periodEnd
	if free, ok := freeAt(a, head); ok && free.Before(wakeAt) {
		wakeAt = free
	}
	if soon, ok := q.errorRetryAt(a); ok && soon.Before(wakeAt) {
		wakeAt = soon
	}
	return wakeAt, head
}

// freeAt returns when the key that refused a must have expired on a
// quorum of servers, by their replies, if they told and this call heads
// the queue (the head, or any waiter when nobody announces releases, also
// wakes then).
func freeAt(a lockAttempt, head bool) (time.Time, bool) {
	if a.freeIn < 0 || !head {
		return time.Time{}, false
	}
	return a.start.Add(a.freeIn + time.Duration(mathrand.Int63n(int64(time.Millisecond)))), true
}

// errorRetryAt returns when to try again after a server failed attempt a,
// for a waiter: a server that failed (a connection broken by a restart,
// say) may not announce the next release either. It backs off while
// servers keep failing.
func (q *acquirer) errorRetryAt(a lockAttempt) (time.Time, bool) {
	var failed *RedisError
	if q.w == nil || !errors.As(a.res.err, &failed) {
		q.errorRetries = 0
		return time.Time{}, false
	}
	q.errorRetries = min(q.errorRetries, 5)
	soon := time.Now().Add(errorRetryPause << q.errorRetries)
	q.errorRetries++
	return soon, true
}

// wait waits until wakeAt, a wake-up of the waiter, or the end of the
// caller's context; head is whether it heads the queue (see wakeAt).
func (q *acquirer) wait(wakeAt time.Time, head bool) wakeUp {
	if q.timer == nil {
		q.timer = time.NewTimer(time.Until(wakeAt))
	} else {
		q.timer.Reset(time.Until(wakeAt))
	}
	wake := q.idle()
	select {
	case <-q.ctx.Done():
		return wokeCanceled
	case <-wake:
		if !q.timer.Stop() {
			<-q.timer.C
		}
		return wokeSignaled
	case <-q.timer.C:
	}
	if wakeAt.Before(q.periodEnd) {
		return wokeEarly
	}
	q.count.tries++
	q.periodEnd = time.Time{}
	if !head {
		return wokeBehind
	}
	return wokeDelayOver
}

// idle marks the waiter, if any, as waiting, and returns its wake-up
// channel (nil without a waiter).
func (q *acquirer) idle() chan struct{} {
	if q.w == nil {
		return nil
	}
	q.w.idle()
	return q.w.wake
}

// leave ends the loop, whose result is err: it stops the timer and leaves
// the queue.
func (q *acquirer) leave(err error) {
	if q.timer != nil {
		q.timer.Stop()
	}
	if q.w == nil {
		return
	}
	var until time.Time
	if err == nil {
		until = q.m.Until()
	}
	q.w.leave(err == nil, until)
}

// lockAborted is Lock's error when the caller's context ended.
func lockAborted(ctxErr, lastErr error) error {
	return errors.Join(ErrFailed, ctxErr, lastErr)
}

// errorRetryPause is how soon a waiter tries again after a server failed
// its attempt; it doubles while servers keep failing, up to 32 times.
const errorRetryPause = 200 * time.Millisecond
