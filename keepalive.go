package redsync

import (
	"context"
	"errors"
	"fmt"
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
	go m.keepAlive(k)
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
func (m *Mutex) stopKeepAlive(cause error) {
	m.mu.Lock()
	k := m.held.keeper
	m.held.keeper = nil
	m.mu.Unlock()
	if k == nil {
		return
	}
	k.cancel(cause)
	close(k.stop)
	<-k.done
}

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

// keepAlive is the goroutine behind KeepAlive. It owns no lock state but
// the keeper; Unlock stops it through stopKeepAlive.
func (m *Mutex) keepAlive(k *keeper) {
	defer close(k.done)
	// A failed extension is retried after a short pause, as long as the
	// lock is valid.
	retry := m.opTimeout()
	if every := m.keepAliveEvery(); retry > every {
		retry = every
	}
	next := time.Now().Add(m.keepAliveEvery())
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		lost := m.Until().Add(-m.keepAliveMargin())
		wakeAt := next
		if lost.Before(wakeAt) {
			wakeAt = lost
		}
		timer.Reset(time.Until(wakeAt))
		select {
		case <-k.stop:
			return
		case <-k.ctx.Done():
			return
		case <-timer.C:
		}
		if !time.Now().Before(lost) {
			m.lose(k, fmt.Errorf("%w: no extension succeeded before its validity ran out", ErrLockLost))
			return
		}
		// k.ctx ends the wait when Unlock or the caller stops us; the
		// requests sent complete on their own either way.
		// The extension gives up at the moment the lock would be lost.
		extendCtx, cancel := context.WithDeadline(k.ctx, lost)
		res, err := m.extend(extendCtx, OpKeepAlive, true)
		cancel()
		var taken *ErrTaken
		switch {
		case err == nil:
			next = time.Now().Add(m.keepAliveEvery())
		case errors.As(res.err, &taken):
			m.lose(k, fmt.Errorf("%w: a quorum of servers holds another value (nodes %v)", ErrLockLost, taken.Nodes))
			return
		case errors.Is(err, ErrNotHeld):
			m.lose(k, fmt.Errorf("%w: the Mutex no longer holds a value", ErrLockLost))
			return
		case errors.Is(err, ErrLockLost):
			m.lose(k, err)
			return
		default:
			next = time.Now().Add(retry)
		}
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
