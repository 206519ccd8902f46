package redsync

import (
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/handoff"
)

// A handOffer is an Unlock that hands the lock over to the head waiter of
// its process (see handoff.Offer and scripts.HandOver): what the release
// requests send, and what the waiter takes once it is settled.
type handOffer struct {
	off       handoff.Offer
	value     string // the waiter's value
	valueArg  any    // value, converted once for the requests
	expiryArg any    // the waiter's expiry in milliseconds
	hold      *holding
	start     time.Time     // when the release was about to be sent
	handed    int32         // servers that set value (atomic)
	done      chan struct{} // closed once settled
	// grantedTil is the waiter's validity, zero when not granted; set
	// before done is closed.
	grantedTil time.Time
}

// offerHead hands the lock that m releases over to the head waiter of m's
// name in this process, if there is one that may take it (see
// handoff.Queues.OfferHead). It returns nil otherwise.
func (h *handoffState) offerHead(m *Mutex) *handOffer {
	q := h.started()
	if q == nil {
		return nil
	}
	servers := len(m.nodes.pools)
	o := q.OfferHead(m.releaser(), func(value string, expiryArg any, start time.Time) (*handoff.Offer, any) {
		ho := &handOffer{
			value:     value,
			valueArg:  value,
			expiryArg: expiryArg,
			hold:      newHolding(value, servers),
			start:     start,
			done:      make(chan struct{}),
		}
		return &ho.off, ho
	})
	if o == nil {
		return nil
	}
	return o.Attached().(*handOffer)
}

// releaser describes m to OfferHead: as for its waiters (see
// handOverTerms), a Mutex with fencing or shuffled pools hands nothing over.
func (m *Mutex) releaser() handoff.Releaser {
	return handoff.Releaser{Name: m.name, Owner: m, MayHandOver: !m.cfg.fencing && !m.cfg.shuffle}
}

// releaseOffer releases what an offer set that its waiter does not hold
// (handoff.Config.ReleaseOffer).
func releaseOffer(o *handoff.Offer) {
	wm := o.Owner().(*Mutex) // the waiter's
	wm.releaseHold(o.Attached().(*handOffer).hold)
}

// replied records the reply of one server to the hand-over: handed, or an
// error after which the server may hold the waiter's value.
func (o *handOffer) replied(m *Mutex, node int, handed bool, err error) {
	if handed || (err != nil && err != ErrLockAlreadyExpired && !neverSent(err)) {
		if !o.hold.record(node) {
			// The hold was given up: this late reply is released here.
			m.releaseLate(m.nodes.pools[node], o.value)
		} else if handed {
			atomic.AddInt32(&o.handed, 1)
		}
	}
	o.hold.acquireReplied(node)
}

// settle decides the offer once the releaser's round returned, and tells
// the waiter; a waiter that gave up meanwhile has its servers released.
// It reports whether the waiter holds the lock (or would have).
func (o *handOffer) settle() bool {
	return o.off.Settle(int(atomic.LoadInt32(&o.handed)), o.decided)
}

// decided tells the waiter the decision of settle.
func (o *handOffer) decided(until time.Time) {
	o.grantedTil = until
	close(o.done)
}

// abandon gives the offer up for a waiter that stopped waiting without
// taking it; what the offer set is released once it is settled.
func (o *handOffer) abandon() {
	o.off.Abandon()
}
