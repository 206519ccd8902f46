package redsync

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// The fleet queue: a Lock that may wait queues on every server, and a
// release hands the key straight to the first waiter of the fleet,
// whichever process it is in (the design is internal/handoff's package
// comment; the scripts are scripts.AcquireQueued and scripts.Release).
//
// Why a hand-over keeps the lock exclusive. A server changes the key from
// one value to another only when the key is missing or by the release of
// the value it holds: a hand-over is such a release, which sets the
// waiter's value in the same step. So, as in Redlock, two holders at once
// would need two quorums of servers holding their values at once, and any
// two quorums share a server, which holds one value at a time. What a
// hand-over adds is how the waiter bounds its validity without a request
// of its own: the server announces the milliseconds w that the value had
// queued there, by its own clock, before it set the key. The value queued
// there by a request sent after since (the stint's start, below, when the
// value was made), so the key was set at since + w or later and lives an
// expiry from then: the waiter counts it held until since + (w + expiry)
// less the drift allowance on both, whenever the announcement reaches it.
// A waiter paused past that learns, on waking, that the server's share of
// the quorum has passed. A server clock that jumps forward while waiters
// queue inflates w by the jump, as it would shorten every key's life: the
// clock assumption of Redlock, unchanged.

// fleetLease is how long a queued value stays in a server's queue without
// being renewed: a waiter that stops (crashes, pauses, is cut off) is
// passed over by the releases once it ends.
const fleetLease = 2 * time.Second

// fleetStay is how often a waiter renews its lease, with an attempt.
const fleetStay = fleetLease / 2

// Outsiders' turns: once a server has handed the key over for fleetRun in
// a row, the first release in each fleetRun of its clock (counted from the
// epoch, so that the servers agree on the release) leaves the key free and
// the server refuses it to queued waiters for fleetWindow, so that a Lock
// that does not queue (redsync's,
// this library's without hand-off or through a Pool that
// cannot listen, TryLock) gets its chance on a busy name: queued waiters
// would otherwise keep the key for good. It costs a busy name fleetWindow
// per fleetRun (3 %). The scripts take them in milliseconds.
const (
	fleetRun    = time.Second
	fleetWindow = 30 * time.Millisecond

	fleetRunMillis    = int64(fleetRun / time.Millisecond)
	fleetWindowMillis = int64(fleetWindow / time.Millisecond)
)

// fleetStint is one value's time in the fleet queue, from its making until
// the Lock call gives it up: it holds the lock with it, or gives it up
// after an attempt that set the key on some servers and no quorum
// followed (a fresh value then queues, at the same place).
type fleetStint struct {
	value  string
	ticket any       // the Lock call's place in the queue: microseconds
	since  time.Time // before any request carried value
	hold   *holding  // the servers that may hold or queue value
	// own[node] is when the key set on node by an attempt of this stint
	// must be assumed gone; zero when no attempt set it.
	own []time.Time
	// partial is when the stint first held a server without a quorum;
	// zero until then.
	partial time.Time
	// reads gathers, with fencing, the counters and clocks read by the
	// servers that set the key for the stint's attempts, and the floors
	// announced by those that handed it over; nil without fencing.
	reads *fenceReads
	// notStored is set when the token of a quorum of hand-overs could not
	// be stored: the stint is given up.
	notStored bool
}

// queues reports whether the Lock call waits in the fleet queue: it may
// wait, and listen, and the name has queue keys.
func (q *acquirer) queues() bool {
	return q.tries > 1 && q.listens() && q.m.fleet
}

// runQueued is run for a Lock call that waits in the fleet queue.
func (q *acquirer) runQueued() error {
	// Behind the waiters of this process, if any; otherwise the first
	// attempt goes alone, and the Lock joins (and listens) only when it
	// is refused: an uncontended Lock costs no subscription. A hand-over
	// announced before the listener confirms its subscription is caught
	// by the attempt that the confirmation wakes.
	q.w = q.m.rs.handoff.joinBehind(q.m.spec())
	if err := q.newStint(time.Now().UnixMicro()); err != nil {
		return err
	}
	handed := make([]int64, len(q.m.rs.pools))
	var floors []uint64
	if q.m.cfg.fencing {
		floors = make([]uint64, len(q.m.rs.pools))
	}
	for {
		a, err := q.attempt(attemptQueued)
		switch {
		case err != nil:
			q.retire(q.m.opTimeout())
			return err
		case a.held:
			return nil
		case a.res.ctxErr != nil:
			q.retire(cancelCleanupWait)
			return lockAborted(a.res.ctxErr, a.res.err)
		case a.res.err != nil:
			q.lastErr = a.res.err
		}
		if q.w == nil {
			q.w = q.m.rs.handoff.join(q.m, a.start)
			q.w.queue(q.stint.value)
		}
		q.stint.keep(a)
		if err := q.awaitTurn(a, handed, floors); err != errAttemptAgain {
			return err
		}
	}
}

// errAttemptAgain is awaitTurn's "attempt again", never returned by Lock.
var errAttemptAgain = errors.New("redsync: attempt again")

// awaitTurn waits after attempt a, which failed, until the servers' hand-
// overs complete a quorum (nil: the lock is held), the time to attempt
// again (errAttemptAgain), or the end of the call (its error).
func (q *acquirer) awaitTurn(a lockAttempt, handed []int64, floors []uint64) error {
	for {
		if q.takeHanded(handed, floors) {
			return nil
		}
		if q.stint.notStored {
			if q.ctx.Err() != nil {
				q.retire(cancelCleanupWait)
				return lockAborted(q.ctx.Err(), q.lastErr)
			}
			q.retire(0)
			if err := q.newStint(q.stint.ticket); err != nil {
				return err
			}
			return errAttemptAgain
		}
		if q.count.tries >= q.tries {
			q.retire(q.m.opTimeout())
			return q.failure()
		}
		seen := q.w.handed(handed, nil)
		if seen > 0 && q.stint.partial.IsZero() {
			q.stint.partial = time.Now()
		}
		woke := q.wait(q.queuedWakeAt(a), true)
		if woke == wokeCanceled {
			q.retire(cancelCleanupWait)
			return lockAborted(q.ctx.Err(), q.lastErr)
		}
		if woke == wokeSignaled && q.w.handed(handed, nil) > seen {
			continue // a server handed the key over: count again
		}
		if p := q.stint.partial; !p.IsZero() && time.Since(p) >= q.m.handoffGrace() {
			// Some servers hold the value and no quorum followed: the
			// value is given up (handed on to the next waiters where it
			// holds the key) and a fresh one queues at the same place.
			// (A try that ends with nothing held keeps the value: a
			// fresh one per try would cost each waiter a release and an
			// acquire per retry delay.)
			q.retire(0)
			if err := q.newStint(q.stint.ticket); err != nil {
				return err
			}
		}
		return errAttemptAgain
	}
}

// queuedWakeAt returns when to attempt again after a, at the latest: at
// the end of the retry delay, when the key must have expired, when the
// lease needs renewing, when the wait for hand-overs to complete a quorum
// ends, or soon after a server failed.
func (q *acquirer) queuedWakeAt(a lockAttempt) time.Time {
	if q.periodEnd.IsZero() {
		q.periodEnd = time.Now().Add(max(q.m.cfg.delayFunc(q.count.tries), 0))
	}
	wakeAt := q.periodEnd
	earlier := func(t time.Time) {
		if t.Before(wakeAt) {
			wakeAt = t
		}
	}
	if free, ok := freeAt(a, true); ok {
		earlier(free)
	}
	earlier(a.start.Add(fleetStay))
	if p := q.stint.partial; !p.IsZero() {
		earlier(p.Add(q.m.handoffGrace()))
	}
	if soon, ok := q.errorRetryAt(a); ok {
		earlier(soon)
	}
	return wakeAt
}

// newStint starts a stint with a fresh value at the place ticket, and
// queues it with the waiter of this process before any request carries it,
// so that no announcement of a hand-over to it goes unheard here.
func (q *acquirer) newStint(ticket any) error {
	value, err := q.m.cfg.genValueFunc()
	if err != nil {
		return fmt.Errorf("redsync: making the lock value: %w", err)
	}
	q.stint = &fleetStint{value: value, ticket: ticket, since: time.Now(),
		hold: newHolding(value, len(q.m.nodes.pools)), own: make([]time.Time, len(q.m.nodes.pools))}
	if q.m.cfg.fencing {
		q.stint.reads = &fenceReads{}
	}
	if q.w != nil {
		q.w.queue(value)
	}
	return nil
}

// retire gives the stint's value up: every server that may hold or queue
// it is released, which hands the key on where it holds it. It waits up to
// d for the releases. A server where the value only queued, as far as this
// process knows, is released within fleetLease and the per-server
// deadline, after which its entry is passed over anyway: a stalled server
// does not keep Redsync.Wait waiting for an expiry.
func (q *acquirer) retire(d time.Duration) {
	m, s := q.m, q.stint
	handed := make([]int64, len(m.rs.pools))
	if q.w != nil {
		q.w.handed(handed, nil)
	}
	now := time.Now()
	released := m.releaseHoldWithin(s.hold, func(node int) time.Duration {
		if s.own[node].After(now) || handed[m.serverIndex(node)] > 0 {
			return m.cfg.expiry
		}
		return fleetLease + m.opTimeout()
	})
	if d > 0 {
		awaitReleased(released, d)
	}
}

// keep records the servers that a, an attempt of the stint that failed,
// set the key on.
func (s *fleetStint) keep(a lockAttempt) {
	set := false
	for node := range s.own {
		if a.set.Has(node) {
			s.own[node] = a.setUntil
			set = true
		}
	}
	if set && s.partial.IsZero() {
		s.partial = time.Now()
	}
}

// takeHanded takes the lock when the servers that hold the stint's value,
// by its own attempts or by hand-overs (handed, the waiter's record, is
// filled in, and floors with fencing), make a quorum that is still valid,
// and reports whether it did. With fencing the token, agreed from the
// reads of the stint's attempts and the floors the hand-overs announced,
// is stored in a quorum first, as after an acquire (see WithFencing); when
// it cannot be, the stint is marked notStored.
func (q *acquirer) takeHanded(handed []int64, floors []uint64) bool {
	m, s := q.m, q.stint
	if q.w.handed(handed, floors) == 0 {
		return false
	}
	now := time.Now()
	bounds := make([]time.Time, 0, len(s.own))
	for node, own := range s.own {
		bound := own
		if h := handed[m.serverIndex(node)]; h > 0 {
			life := time.Duration(h-1)*time.Millisecond + m.cfg.expiry
			if b := s.since.Add(life - time.Duration(float64(life)*m.cfg.driftFactor)); b.After(bound) {
				bound = b
			}
		}
		if bound.After(now) {
			bounds = append(bounds, bound)
		}
	}
	if len(bounds) < m.nodes.quorum {
		return false
	}
	slices.SortFunc(bounds, func(a, b time.Time) int { return b.Compare(a) })
	until := bounds[m.nodes.quorum-1]
	var token uint64
	if s.reads != nil {
		for node := range s.own {
			if f := floors[m.serverIndex(node)]; f > 0 && handed[m.serverIndex(node)] > 0 {
				s.reads.AddFloor(f)
			}
		}
		var stored bool
		if token, stored = s.reads.token(); !stored {
			wb := m.writeBackToken(q.ctx, s.value, token, s.hold)
			if wb.n < m.nodes.quorum || !time.Now().Before(until) {
				s.notStored = true
				if wb.ctxErr == nil {
					q.lastErr = errors.Join(ErrTokenNotStored, wb.err)
				}
				return false
			}
		}
	}
	m.setHeld(s.value, token, until, s.since, s.hold)
	q.count.attempts++
	if m.obs != nil {
		m.observeAttempt(q.ctx, lockAttempt{start: s.since, held: true, handedOver: true, res: roundResult{n: len(bounds)}}, lockCount{tries: q.count.tries, attempts: q.count.attempts - 1})
	}
	return true
}
