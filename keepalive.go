package redsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// keeper extends a held lock in the background; see KeepAlive.
type keeper struct {
	ctx    context.Context // the holder's context, returned by KeepAlive
	cancel context.CancelCauseFunc
	stop   chan struct{} // closed by stopKeepAlive
	done   chan struct{} // closed when run returns
}

// KeepAlive keeps the lock held by m alive until Unlock: it extends it in
// the background every keep-alive interval (a third of the expiry by
// default, see WithKeepAliveInterval), retries a failed extension while the
// lock is still valid, and sets the key again on a server that lost it (as
// WithSetNXOnExtend does).
//
// It returns a context for the holder, derived from ctx, that is cancelled
// the moment the lock can no longer be proven held: when Until, less a
// margin (the drift allowance or the per-server deadline, whichever is
// longer), passes without a successful extension, when a quorum of
// servers holds another value, when an extension comes back only after
// Until (the process was stopped meanwhile, and another holder may have had
// the lock in between), or when Unlock is called. context.Cause
// tells which: an error wrapping ErrLockLost, ErrUnlocked, or the cause of
// ctx when ctx ended first (the extension then stops, and the lock lapses at
// its expiry unless Unlock releases it first). Work done under the lock
// should stop when that context is done.
//
// A Mutex given the value of a lock taken elsewhere (WithValue) and not
// extended since has no validity yet: KeepAlive extends it first, as
// Extend without WithSetNXOnExtend does, and returns an error wrapping
// ErrLockLost and that extension's error when it fails.
//
// KeepAlive returns ErrNotHeld, sending nothing, when m holds no value or
// its lock was released by Unlock (a lock given up never comes back); an
// error wrapping ErrLockLost when the lock's validity is already over; and
// the same context again when called twice. Unlock stops the extension and waits
// for it to stop: after Unlock nothing extends the key again.
func (m *Mutex) KeepAlive(ctx context.Context) (context.Context, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	if err := m.extendGivenValue(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held.value == "" || m.held.released {
		return nil, ErrNotHeld
	}
	if m.held.keeper != nil {
		return m.held.keeper.ctx, nil
	}
	if !time.Now().Before(m.held.until.Add(-m.keepAliveMargin())) {
		return nil, fmt.Errorf("%w: its validity is already over", ErrLockLost)
	}
	held, cancel := context.WithCancelCause(ctx)
	k := &keeper{ctx: held, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	m.held.keeper = k
	go k.keepExtending(m.keptLock(k))
	return held, nil
}

// extendGivenValue extends the lock of a value given with WithValue that
// has no validity yet (neither Lock nor Extend set Until), so that
// KeepAlive has a validity to keep. The extension does not set the key
// where it is missing: a lock that lapsed is not taken anew.
func (m *Mutex) extendGivenValue(ctx context.Context) error {
	m.mu.Lock()
	needed := m.held.value != "" && !m.held.released && m.held.until.IsZero() && m.held.keeper == nil
	m.mu.Unlock()
	if !needed {
		return nil
	}
	if _, err := m.extend(ctx, OpExtend, false); err != nil {
		return fmt.Errorf("%w: extending the lock of the value given with WithValue failed: %w", ErrLockLost, err)
	}
	return nil
}

// stopKeepAlive stops the background extension, if any, with cause, and
// waits until it has stopped.
func (m *Mutex) stopKeepAlive(cause error) { stopKeeper(&m.mu, &m.held.keeper, cause) }

// keepAliveMargin is how long before Until the holder's context is
// cancelled when no extension succeeded: the drift allowance, and at least
// the per-server deadline, so that a late timer or a slow last extension
// on a busy machine still leaves the cancellation before Until.
func (m *Mutex) keepAliveMargin() time.Duration {
	margin := m.drift()
	if op := m.opTimeout(); margin < op {
		margin = op
	}
	if margin < time.Millisecond {
		margin = time.Millisecond
	}
	return margin
}

// keepAliveEvery is the pause between extensions.
func (m *Mutex) keepAliveEvery() time.Duration {
	if m.cfg.keepAliveInterval > 0 {
		return m.cfg.keepAliveInterval
	}
	return m.cfg.expiry / 3
}

// keptLock is the lock held, kept alive by k: the goroutine behind
// KeepAlive (k.keepExtending) owns no lock state but the keeper; Unlock
// stops it through stopKeepAlive. Its extensions set the key again where
// it is gone.
func (m *Mutex) keptLock(k *keeper) keptLock {
	every := m.keepAliveEvery()
	return keptLock{
		every: every, retry: min(m.opTimeout(), every), margin: m.keepAliveMargin(),
		until: m.Until,
		extend: func(ctx context.Context) (bool, roundResult, error) {
			res, err := m.extend(ctx, OpKeepAlive, true)
			return err == nil, res, err
		},
		lose:    func(cause error) { m.lose(k, cause) },
		notHeld: "the Mutex no longer holds a value",
	}
}

// lose tells the Observer that the lock is lost, and cancels the holder's
// context of k with cause, which wraps ErrLockLost. The Observer comes
// first, so that it sees the loss before what the holder does about it.
func (m *Mutex) lose(k *keeper, cause error) {
	m.observeLost(k.ctx, cause)
	k.cancel(cause)
}

// RunLocked acquires the lock (LockContext), keeps it alive (KeepAlive)
// while fn runs with the holder's context, and releases it (Unlock) when fn
// returns or panics, or once ctx or the lock is lost and fn returned. It
// returns fn's error joined with the lock's: the error of Lock (fn does not
// run), the cause of a lost lock (wrapping ErrLockLost), or Unlock's error.
// A panic in fn is re-raised after the release.
func (m *Mutex) RunLocked(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if fn == nil {
		return &ArgumentError{Arg: "fn", Problem: "RunLocked was given a nil function"}
	}
	if err := m.LockContext(ctx); err != nil {
		return err
	}
	held, err := m.KeepAlive(ctx)
	if err != nil {
		_, _ = m.UnlockContext(context.WithoutCancel(ctx))
		return err
	}
	defer func() {
		var lost error
		if cause := context.Cause(held); errors.Is(cause, ErrLockLost) {
			lost = cause
		}
		// Released on a context of its own: ctx may be done by now.
		_, unlockErr := m.UnlockContext(context.WithoutCancel(ctx))
		if lost != nil {
			// After a loss Unlock only confirms it.
			unlockErr = nil
		}
		err = errors.Join(err, lost, unlockErr)
	}()
	return fn(held)
}

// RunLocked is NewMutex(name, options...).RunLocked(ctx, fn): it runs fn
// under the lock on name, kept alive while fn runs, and always releases it.
func (r *Redsync) RunLocked(ctx context.Context, name string, fn func(ctx context.Context) error, options ...Option) error {
	return r.NewMutex(name, options...).RunLocked(ctx, fn)
}

// keptLock is what keepExtending needs of a lock kept alive: a Mutex's,
// an RWMutex's, a MultiMutex's or a Lease's.
type keptLock struct {
	every, retry, margin time.Duration    // the pause, the retry pause, the margin before until
	until                func() time.Time // the lock's validity
	// extend runs one extension and reports whether it succeeded.
	extend func(ctx context.Context) (ok bool, res roundResult, err error)
	// lose tells of the loss with cause, cancelling the holder's context.
	lose func(cause error)
	// notHeld says why an extension that found no lock held lost it.
	notHeld string
}

// keepExtending is the goroutine behind the KeepAlive of l: it extends l
// every l.every, retries a failed extension every l.retry while l is
// valid, and stops when k is stopped (stopKeeper) or l is lost.
func (k *keeper) keepExtending(l keptLock) {
	defer close(k.done)
	next := time.Now().Add(l.every)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		lost := l.until().Add(-l.margin)
		timer.Reset(time.Until(minTime(next, lost)))
		select {
		case <-k.stop:
			return
		case <-k.ctx.Done():
			return
		case <-timer.C:
		}
		if !time.Now().Before(lost) {
			l.lose(fmt.Errorf("%w: no extension succeeded before its validity ran out", ErrLockLost))
			return
		}
		extendCtx, cancel := context.WithDeadline(k.ctx, lost)
		ok, res, err := l.extend(extendCtx)
		cancel()
		var taken *ErrTaken
		switch {
		case ok:
			next = time.Now().Add(l.every)
		case errors.As(res.err, &taken):
			l.lose(fmt.Errorf("%w: a quorum of servers holds another value (nodes %v)", ErrLockLost, taken.Nodes))
			return
		case errors.Is(err, ErrNotHeld):
			l.lose(fmt.Errorf("%w: %s", ErrLockLost, l.notHeld))
			return
		case errors.Is(err, ErrLockLost):
			l.lose(err)
			return
		default:
			next = time.Now().Add(l.retry)
		}
	}
}

// stopKeeper stops the keeper in *slot, guarded by mu, if any, with
// cause, clears the slot, and waits until the keeper has stopped.
func stopKeeper(mu *sync.Mutex, slot **keeper, cause error) {
	mu.Lock()
	k := *slot
	*slot = nil
	mu.Unlock()
	if k == nil {
		return
	}
	k.cancel(cause)
	close(k.stop)
	<-k.done
}
