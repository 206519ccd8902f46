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
	res := m.roundAtQuorum(ctx, r.releaseOn, m.watchRound(ctx, OpUnlock, 0), releaseNotNeeded(hold, r.offer))
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
	// offer, when not nil, hands the lock over to the head waiter of this
	// process (see handoffState.offerHead, handover.go).
	offer *handOffer
	// staleNodes has bit i set when one listener of this process on server
	// i heard of the lock for nobody (see handoffState.staleListeners,
	// handoff.go, over internal/handoff's Queues.StaleListeners).
	staleNodes uint64
}

// newReleaseRound prepares the release of value, held with hold.
func (m *Mutex) newReleaseRound(value string, hold *holding) releaseRound {
	r := releaseRound{m: m, value: value, valueArg: value, hold: hold}
	if m.rs.canListen {
		r.offer = m.rs.handoff.offerHead(m)
		r.staleNodes = m.rs.handoff.staleListeners(m)
	}
	return r
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
	stale := countEveryListener
	if r.staleNodes&(1<<uint(node)) != 0 {
		stale = leaveOneListener
	}
	ok, handed, err := r.m.releaseTo(ctx, pool, r.valueArg, stale, r.offer)
	if r.offer != nil {
		r.offer.replied(r.m, node, handed, err)
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
func releaseNotNeeded(hold *holding, offer *handOffer) func(node int) bool {
	return func(node int) bool {
		if hold == nil || hold.mayHold(node) {
			return false
		}
		hold.giveUpNode(node)
		if offer != nil {
			offer.hold.acquireReplied(node)
		}
		return true
	}
}

// result is Unlock's result from its round's: the offer, if any, is
// settled, and a release that handed nothing over is announced to the
// waiters of this process.
func (r releaseRound) result(res roundResult) (bool, error) {
	handedOver := false
	if r.offer != nil {
		handedOver = r.offer.settle()
	}
	if res.ctxErr != nil {
		return false, errors.Join(res.err, fmt.Errorf("redsync: the context ended before a quorum confirmed the release; the releases sent complete in the background: %w", res.ctxErr))
	}
	if res.n < r.m.nodes.quorum {
		return false, res.err
	}
	if r.m.rs.canListen && !handedOver {
		r.m.rs.handoff.releasedHere(r.m.name)
	}
	return true, nil
}

// release deletes the key on one server if it holds value, once more on
// another connection when the first was found closed by the server. It
// never leaves the placeholder for waiters: it cleans up after a failed
// attempt, or after a late reply, for nobody waiting.
func (m *Mutex) release(ctx context.Context, pool redis.Pool, value any) (bool, error) {
	ok, _, err := m.releaseTo(ctx, pool, value, neverReserve, nil)
	return ok, err
}

// Arguments of scripts.Release (ARGV[5]): how many listeners of the releaser's own
// process to leave out when it counts the waiters that heard the release
// (see handoff.Queues.StaleListeners), or never to reserve the key for waiters.
var (
	countEveryListener any = int64(0)
	leaveOneListener   any = int64(1)
	neverReserve       any = int64(-1)
)

// releaseTo is release that, with an offer, hands the key over to the
// offer's waiter there when nobody else listens for it (see
// scripts.HandOver); handed reports that it did. Without one, stale is
// scripts.Release's count of listeners to leave out.
func (m *Mutex) releaseTo(ctx context.Context, pool redis.Pool, value, stale any, offer *handOffer) (ok, handed bool, err error) {
	ok, handed, err = m.releaseOnce(ctx, pool, value, stale, offer)
	if brokenConnection(err) {
		// A pooled connection the server closed (it restarted, say):
		// the request never reached it, and another connection will.
		// Releasing twice is harmless anyway, and the hand-over script
		// reports a hand-over made by the first request as one.
		ok, handed, err = m.releaseOnce(ctx, pool, value, stale, offer)
	}
	return ok, handed, err
}

// releaseOnce is one release (or hand-over) request.
func (m *Mutex) releaseOnce(ctx context.Context, pool redis.Pool, value, stale any, offer *handOffer) (ok, handed bool, err error) {
	defer recoverPanic(&err)
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, false, err
	}
	defer conn.Close()
	var reply any
	if offer == nil {
		reply, err = conn.Eval(scripts.Release, m.args.name, value, m.args.channel, handoffMarker, m.args.graceMillis, stale)
	} else {
		reply, err = conn.Eval(scripts.HandOver, m.args.name, value, m.args.channel, handoffMarker, m.args.graceMillis, offer.valueArg, offer.expiryArg)
	}
	if err != nil {
		return false, false, err
	}
	// Only the script's own replies count: a server that did not run it
	// has not released anything.
	var status scripts.ReleaseReply
	if offer == nil {
		status, err = scripts.ParseRelease(reply)
	} else {
		status, err = scripts.ParseHandOver(reply)
	}
	if err != nil {
		return false, false, err
	}
	switch status {
	case scripts.HandOverHanded:
		return true, true, nil
	case scripts.ReleaseReleased:
		return true, false, nil
	case scripts.ReleaseOtherValue:
		return false, false, nil
	}
	return false, false, ErrLockAlreadyExpired // scripts.ReleaseMissing
}

// handoffGrace is how long a released key stays reserved for the waiters
// that were told about it.
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
	nodes := hold.giveUp()
	if len(nodes) == 0 {
		return nil
	}
	released := make(chan struct{})
	remaining := int32(len(nodes))
	for _, node := range nodes {
		m.nodes.inflight.add()
		go func(pool redis.Pool) {
			defer m.nodes.inflight.done()
			m.releaseLate(pool, hold.value)
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
