package redsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// Extend extends the write lock: ExtendContext with context.Background().
func (rw *RWMutex) Extend() (bool, error) { return rw.ExtendContext(context.Background()) }

// ExtendContext resets the expiry of the write lock's key on every server
// that still holds it and reports whether a quorum did in time to leave a
// validity; Until moves accordingly. It returns ErrExtendFailed when a
// quorum extended too late to leave any, ErrNotHeld, sending nothing,
// when the RWMutex holds no write lock, and, with a ctx done already, an
// error matching ctx.Err(), sending nothing. It never sets a key that is
// gone.
func (rw *RWMutex) ExtendContext(ctx context.Context) (bool, error) {
	err := rw.extend(ctx, true, OpRWExtend)
	return err == nil, err
}

// RExtend extends the read lock: RExtendContext with
// context.Background().
func (rw *RWMutex) RExtend() (bool, error) { return rw.RExtendContext(context.Background()) }

// RExtendContext is ExtendContext for the read lock: on every server that
// still has the reader's entry and the readers' mark, it resets both (the
// entry to the full expiry, the mark to outlive every reader's entry),
// all or nothing per server. ErrNotHeld when the RWMutex holds no read
// lock.
func (rw *RWMutex) RExtendContext(ctx context.Context) (bool, error) {
	err := rw.extend(ctx, false, OpRExtend)
	return err == nil, err
}

// extend is ExtendContext and RExtendContext, observed as op.
func (rw *RWMutex) extend(ctx context.Context, write bool, op Op) error {
	if err := rw.m.checkActive(ctx, "extension"); err != nil {
		return err
	}
	return rw.extendObserved(ctx, write, op)
}

// extendObserved is one extension observed as op (OpRExtend, OpRWExtend,
// OpKeepAlive) of the lock held, which must be a write lock when write.
func (rw *RWMutex) extendObserved(ctx context.Context, write bool, op Op) error {
	return rw.m.observeOp(ctx, op, 0, func(ctx context.Context, e *DoneEvent) error {
		_, err := rw.extendOnce(ctx, write, op)
		if err == nil {
			e.Validity = time.Until(rw.Until())
		}
		return err
	})
}

// extendOnce runs one extension round of the lock held (of either kind
// for OpKeepAlive) and moves Until on success.
func (rw *RWMutex) extendOnce(ctx context.Context, write bool, op Op) (roundResult, error) {
	m := rw.m
	rw.mu.Lock()
	held := rw.held
	rw.mu.Unlock()
	if held.value == "" || (op != OpKeepAlive && held.write != write) {
		return roundResult{}, ErrNotHeld
	}
	start := time.Now()
	res := m.roundAtQuorum(ctx, rw.extendOn(held), m.watchRound(ctx, op, 0), skipAlways)
	if res.ctxErr != nil {
		return res, errors.Join(res.err, res.ctxErr)
	}
	if res.n < m.nodes.quorum {
		return res, res.err
	}
	now := time.Now()
	if op == OpKeepAlive && !now.Before(held.until) {
		// The replies came after the lock's validity ended: another
		// holder may have had it in between (see Mutex.extended).
		return res, fmt.Errorf("%w: the extension came back after the lock's validity ended", ErrLockLost)
	}
	until := rw.validUntil(start)
	if !now.Before(until) {
		return res, ErrExtendFailed
	}
	rw.mu.Lock()
	if rw.held.value == held.value {
		rw.held.until = until
	}
	rw.mu.Unlock()
	return res, nil
}

// extendOn is the extension of held on one server: a writer's key by the
// Mutex's Extend script, a reader's entry and the mark by RWReadExtend.
func (rw *RWMutex) extendOn(held rwHeld) nodeOp {
	m := rw.m
	if held.write {
		value := any(held.value)
		return func(ctx context.Context, _ int, pool redis.Pool) (bool, error) {
			reply, err := m.eval(ctx, pool, scripts.Extend, m.args.name, value, m.args.expiryMillis)
			if err != nil {
				return false, err
			}
			status, err := scripts.ParseExtend(reply)
			return status == scripts.ExtendExtended, err
		}
	}
	args := []any{m.args.name, rw.args.readersKey, held.value, m.args.expiryMillis, rw.args.mark}
	return func(ctx context.Context, _ int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, scripts.RWReadExtend, args...)
		if err != nil {
			return false, err
		}
		code, err := scripts.ParseRW("rw_read_extend", reply)
		return code == 1, err
	}
}

// Valid reports whether a quorum of servers holds the RWMutex's lock:
// ValidContext with context.Background().
func (rw *RWMutex) Valid() (bool, error) { return rw.ValidContext(context.Background()) }

// ValidContext reports whether a quorum of servers holds the lock the
// RWMutex holds, read or write: the writer's value in the key, or the
// readers' mark with the reader's live entry. It may report true for a
// lock that expires while the reply travels; Until tells the same without
// a round trip. It returns true and no error when a quorum holds it (the
// other servers' failures are not reported), false and ErrNotHeld,
// sending nothing, when the RWMutex holds no lock, and with a ctx done
// already an error matching ctx.Err().
func (rw *RWMutex) ValidContext(ctx context.Context) (bool, error) {
	m := rw.m
	if err := m.checkActive(ctx, "check"); err != nil {
		return false, err
	}
	rw.mu.Lock()
	value := rw.held.value
	rw.mu.Unlock()
	if value == "" {
		return false, ErrNotHeld
	}
	args := []any{m.args.name, rw.args.readersKey, value, rw.args.mark}
	res := m.roundAtQuorum(ctx, func(ctx context.Context, _ int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, scripts.RWValid, args...)
		if err != nil {
			return false, err
		}
		code, err := scripts.ParseRW("rw_valid", reply)
		return code == 1, err
	}, nil, skipAlways)
	if res.ctxErr != nil {
		return false, errors.Join(res.err, res.ctxErr)
	}
	if res.n >= m.nodes.quorum {
		return true, nil
	}
	return false, res.err
}

// KeepAlive keeps the lock the RWMutex holds, read or write, alive until
// it is unlocked, as Mutex.KeepAlive keeps a Mutex's: it extends it in
// the background every keep-alive interval (a third of the expiry by
// default, WithKeepAliveInterval) and retries a failed extension while
// the lock is valid. The context returned, derived from ctx, is cancelled
// the moment the lock can no longer be proven held, with a cause wrapping
// ErrLockLost that says why (no extension in time, a quorum without the
// lock, an extension that came back after Until), or ErrUnlocked at
// RUnlock or Unlock, or ctx's cause. An extension never sets a key or an
// entry that is gone. KeepAlive returns ErrNotHeld when no lock is held,
// an error wrapping ErrLockLost when its validity is already over, and
// the same context when called again.
func (rw *RWMutex) KeepAlive(ctx context.Context) (context.Context, error) {
	if err := rw.m.check(ctx); err != nil {
		return nil, err
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.held.value == "" {
		return nil, ErrNotHeld
	}
	if k := rw.held.keeper; k != nil {
		return k.ctx, nil
	}
	if !time.Now().Before(rw.held.until.Add(-rw.m.keepAliveMargin())) {
		return nil, fmt.Errorf("%w: its validity is already over", ErrLockLost)
	}
	held, cancel := context.WithCancelCause(ctx)
	k := &keeper{ctx: held, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	rw.held.keeper = k
	go k.keepExtending(rw.keptLock(k, rw.held.acquiredAt))
	return held, nil
}

// stopKeepAlive stops the background extension, if any, with cause, and
// waits until it has stopped.
func (rw *RWMutex) stopKeepAlive(cause error) { stopKeeper(&rw.mu, &rw.held.keeper, cause) }

// keptLock is the lock held, kept alive by k; acquiredAt is when it was
// acquired, for the Observer.
func (rw *RWMutex) keptLock(k *keeper, acquiredAt time.Time) keptLock {
	m := rw.m
	every := m.keepAliveEvery()
	return keptLock{
		every: every, retry: min(m.opTimeout(), every), margin: m.keepAliveMargin(),
		until: rw.Until,
		extend: func(ctx context.Context) (bool, roundResult, error) {
			var res roundResult
			err := m.observeOp(ctx, OpKeepAlive, 0, func(ctx context.Context, e *DoneEvent) error {
				var err error
				res, err = rw.extendOnce(ctx, false, OpKeepAlive)
				if err == nil {
					e.Validity = time.Until(rw.Until())
				}
				return err
			})
			return err == nil, res, err
		},
		lose: func(cause error) {
			if m.obs != nil {
				m.obs.Lost(k.ctx, LostEvent{Name: rw.name, Cause: cause, Held: time.Since(acquiredAt)})
			}
			k.cancel(cause)
		},
		notHeld: "the RWMutex no longer holds it",
	}
}

// RunLocked acquires the write lock (LockContext), keeps it alive
// (KeepAlive) while fn runs with the holder's context, and releases it
// (UnlockContext) when fn returns or panics. It returns fn's error joined
// with the lock's: LockContext's error (fn does not run), the cause of a
// lost lock (wrapping ErrLockLost), or UnlockContext's error. A panic in
// fn is re-raised after the release.
func (rw *RWMutex) RunLocked(ctx context.Context, fn func(ctx context.Context) error) error {
	return rw.run(ctx, true, "RunLocked", fn)
}

// RunRLocked is RunLocked with a read lock (RLockContext, RUnlockContext).
func (rw *RWMutex) RunRLocked(ctx context.Context, fn func(ctx context.Context) error) error {
	return rw.run(ctx, false, "RunRLocked", fn)
}

// run is RunLocked and RunRLocked; what names the method in errors.
func (rw *RWMutex) run(ctx context.Context, write bool, what string, fn func(ctx context.Context) error) (err error) {
	if fn == nil {
		return &ArgumentError{Arg: "fn", Problem: what + " was given a nil function"}
	}
	if err := rw.lock(ctx, write, rw.m.cfg.tries); err != nil {
		return err
	}
	release := func() error {
		// On a context of its own: ctx may be done by now.
		_, err := rw.unlock(context.WithoutCancel(ctx), write)
		return err
	}
	held, err := rw.KeepAlive(ctx)
	if err != nil {
		_ = release()
		return err
	}
	defer func() {
		var lost error
		if cause := context.Cause(held); errors.Is(cause, ErrLockLost) {
			lost = cause
		}
		releaseErr := release()
		if lost != nil {
			// After a loss the release only confirms it.
			releaseErr = nil
		}
		err = errors.Join(err, lost, releaseErr)
	}()
	return fn(held)
}
