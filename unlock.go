package redsync

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// Unlock releases the lock and reports whether a quorum of servers
// released it. A server on which the key had already expired is reported
// as ErrLockAlreadyExpired, one holding another value as *ErrNodeTaken.
// Unlock without a value (no Lock, no WithValue) returns ErrNotHeld.
func (m *Mutex) Unlock() (bool, error) {
	return m.UnlockContext(context.Background())
}

// UnlockContext is Unlock that stops waiting when ctx ends. With a ctx
// that is done already it sends nothing, returns false with an error
// matching ctx.Err() and leaves the Mutex as it was: the lock is still
// held, and a later Unlock releases it. When ctx ends during the call, the
// releases already sent still complete in the background, bounded by the
// per-server deadline, so the key does not outlive a cancelled Unlock: the
// error (matching ctx.Err()) then says that the lock is being released,
// and the Mutex counts as unlocked.
func (m *Mutex) UnlockContext(ctx context.Context) (bool, error) {
	if err := m.checkActive(ctx, "release"); err != nil {
		return false, err
	}
	if m.obs == nil {
		return m.unlock(ctx)
	}
	start := time.Now()
	held := m.heldFor(start)
	ctx = m.observeStart(ctx, OpUnlock, 0)
	ok, err := m.unlock(ctx)
	m.obs.Done(ctx, DoneEvent{Op: OpUnlock, Name: m.name, Duration: time.Since(start), Err: err, Canceled: canceledBy(ctx, err), Held: held})
	return ok, err
}

// unlock is UnlockContext once its arguments are checked.
func (m *Mutex) unlock(ctx context.Context) (bool, error) {
	// Nothing extends the key from now on.
	m.stopKeepAlive(ErrUnlocked)
	value, hold := m.giveUpHeld()
	if value == "" {
		return false, ErrNotHeld
	}
	r := m.newReleaseRound(value, hold)
	res := m.roundAtQuorum(ctx, r.releaseOn, m.watchRound(ctx, OpUnlock, 0), releaseNotNeeded(hold))
	return r.result(res)
}

// giveUpHeld marks the lock released and returns the value and the hold
// that the release takes over.
func (m *Mutex) giveUpHeld() (string, *holding) {
	m.mu.Lock()
	value, hold := m.held.value, m.held.hold
	m.held.hold = nil
	m.held.released = value != ""
	m.mu.Unlock()
	return value, hold
}

// releaseRound is Unlock's release on every server.
type releaseRound struct {
	m        *Mutex
	value    string
	valueArg any // value, converted once for every request
	hold     *holding
	// handed counts the servers that handed the key to a waiter of the
	// fleet queue (atomic).
	handed *int32
}

// newReleaseRound prepares the release of value, held with hold.
func (m *Mutex) newReleaseRound(value string, hold *holding) releaseRound {
	return releaseRound{m: m, value: value, valueArg: value, hold: hold, handed: new(int32)}
}

// releaseOn is the release request to one server (a nodeOp).
func (r releaseRound) releaseOn(ctx context.Context, node int, pool redis.Pool) (bool, error) {
	if r.hold != nil {
		// An acquire of the value still on its way to this server (Lock
		// returned at quorum) is waited for, so that this release comes
		// after it and covers it. From then on, requests that set the
		// value here (a late acquire, an extension that sets a missing
		// key) release it themselves.
		r.hold.awaitReply(ctx, node)
		if !r.hold.giveUpNode(node) {
			r.hold.giveUp()
		}
	}
	ok, handed, err := r.m.releaseTo(ctx, pool, r.valueArg)
	if handed {
		atomic.AddInt32(r.handed, 1)
	}
	if err != nil && err != ErrLockAlreadyExpired && !neverSent(err) {
		// A connection broken before the request went out (by a server
		// restart, say) fails it: release once more, on the side.
		// Releasing twice is harmless.
		r.m.nodes.inflight.add()
		go func() {
			defer r.m.nodes.inflight.done()
			r.m.releaseLate(pool, r.value)
		}()
	}
	return ok, err
}

// releaseNotNeeded is Unlock's skip for round: a server that cannot hold
// the value needs no release.
func releaseNotNeeded(hold *holding) func(node int) bool {
	return func(node int) bool {
		if hold == nil || hold.mayHold(node) {
			return false
		}
		hold.giveUpNode(node)
		return true
	}
}

// result is Unlock's result from its round's: a release that handed
// nothing over on a quorum is announced to the waiters of this process;
// one that handed over tells them the lock is no longer held here.
func (r releaseRound) result(res roundResult) (bool, error) {
	handedOver := int(atomic.LoadInt32(r.handed)) >= r.m.nodes.quorum
	if res.ctxErr != nil {
		return false, errors.Join(res.err, fmt.Errorf("redsync: the context ended before a quorum confirmed the release; the releases sent complete in the background: %w", res.ctxErr))
	}
	if res.n < r.m.nodes.quorum {
		return false, res.err
	}
	switch {
	case !r.m.rs.canListen:
	case handedOver:
		r.m.rs.handoff.handedOverHere(r.m.name)
	default:
		r.m.rs.handoff.releasedHere(r.m.name)
	}
	return true, nil
}

// release releases the key on one server if it holds value, once more
// on another connection when the first was found closed by the server: it
// hands the key to the first waiter of the fleet queue, if any, and takes
// value out of the queue (see scripts.Release).
func (m *Mutex) release(ctx context.Context, pool redis.Pool, value any) (bool, error) {
	ok, _, err := m.releaseTo(ctx, pool, value)
	return ok, err
}

// releaseTo is release that also reports whether the server handed the key
// to a waiter.
func (m *Mutex) releaseTo(ctx context.Context, pool redis.Pool, value any) (ok, handed bool, err error) {
	ok, handed, err = m.releaseOnce(ctx, pool, value)
	if brokenConnection(err) {
		// A pooled connection the server closed (it restarted, say):
		// the request never reached it, and another connection will.
		// Releasing twice is harmless anyway.
		ok, handed, err = m.releaseOnce(ctx, pool, value)
	}
	return ok, handed, err
}

// releaseOnce is one release request.
func (m *Mutex) releaseOnce(ctx context.Context, pool redis.Pool, value any) (ok, handed bool, err error) {
	defer recoverPanic(&err)
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, false, err
	}
	defer conn.Close()
	reply, err := conn.Eval(scripts.Release, m.args.name, m.args.queueKey, m.args.entriesKey, m.args.queueFenceKey, value, m.args.channel, fleetRunMillis, fleetWindowMillis)
	if err != nil {
		return false, false, err
	}
	// Only the script's own replies count: a server that did not run it
	// has not released anything.
	status, err := scripts.ParseRelease(reply)
	if err != nil {
		return false, false, err
	}
	switch status {
	case scripts.ReleaseHanded:
		return true, true, nil
	case scripts.ReleaseReleased:
		return true, false, nil
	case scripts.ReleaseOtherValue:
		return false, false, nil
	}
	return false, false, ErrLockAlreadyExpired // scripts.ReleaseMissing
}

// handoffGrace is how long a waiter that holds some servers but no quorum
// waits for the others to hand it the key, before it gives them up.
func (m *Mutex) handoffGrace() time.Duration {
	grace := m.opTimeout()
	if grace > maxHandoffGrace {
		grace = maxHandoffGrace
	}
	if grace < time.Millisecond {
		grace = time.Millisecond
	}
	return grace
}

// releaseHold gives up hold and releases, in the background, the servers
// that may hold its value.
//
// The returned channel is closed once every release is done (nil when
// there was nothing to release).
func (m *Mutex) releaseHold(hold *holding) <-chan struct{} {
	return m.releaseHoldWithin(hold, nil)
}

// releaseHoldWithin is releaseHold with each server's release bounded by
// within(node) instead of the expiry, when within is not nil.
func (m *Mutex) releaseHoldWithin(hold *holding, within func(node int) time.Duration) <-chan struct{} {
	nodes := hold.giveUp()
	if len(nodes) == 0 {
		return nil
	}
	released := make(chan struct{})
	remaining := int32(len(nodes))
	for _, node := range nodes {
		m.nodes.inflight.add()
		bound := m.cfg.expiry
		if within != nil {
			bound = within(node)
		}
		go func(pool redis.Pool) {
			defer m.nodes.inflight.done()
			_, _ = m.release(m.rs.boundedContext(context.Background(), bound), pool, hold.value)
			if atomic.AddInt32(&remaining, -1) == 0 {
				close(released)
			}
		}(m.nodes.pools[node])
	}
	return released
}

// awaitReleased waits up to d for the releases of a failed attempt, so
// that a Lock that gives up leaves the servers that answer clean when it
// returns; a stalled server is not waited for beyond d.
func awaitReleased(released <-chan struct{}, d time.Duration) {
	if released == nil {
		return
	}
	t := getTimer(d)
	defer putTimer(t)
	select {
	case <-released:
	case <-t.C:
	}
}

// cancelCleanupWait bounds how long a cancelled Lock waits for its
// releases: it returns within a few milliseconds of the cancellation. The
// releases of the servers that answer take about a round trip.
const cancelCleanupWait = 5 * time.Millisecond

// releaseLate releases value on one server on behalf of nobody waiting,
// bounded by the expiry, after which the key is gone anyway.
func (m *Mutex) releaseLate(pool redis.Pool, value string) {
	_, _ = m.release(m.rs.boundedContext(context.Background(), m.cfg.expiry), pool, value)
}
