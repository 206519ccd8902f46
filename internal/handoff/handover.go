package handoff

import (
	"sync/atomic"
	"time"
)

// MaxHandOversInARow bounds the hand-overs of a name in a row: the next
// release is made as usual and announced, so that waiters elsewhere get
// their chance even where a server cannot tell that they listen (a Redis
// Cluster counts only the subscribers of the node that runs the script,
// and a process that just started waiting may not be subscribed yet).
const MaxHandOversInARow = 16

// A Releaser describes who is about to release a name, to OfferHead.
type Releaser struct {
	Name  string
	Owner any // compared with the waiters' Spec.Owner
	// MayHandOver: the releaser may hand the lock over (not when its
	// acquisitions agree on a fencing token, nor when it numbers the
	// servers differently from the waiters).
	MayHandOver bool
}

// An Offer is a release that hands the lock over to the head waiter of
// its process. The waiter holds the lock once a quorum of servers set its
// value within its validity, which counts from before the release was
// sent (the start given to NewOffer), as if the waiter had sent an
// acquire then: on each server the key went from the releaser's value to
// the waiter's in one step, so nobody else can have held it there in
// between.
//
// The releaser settles the offer when its round returns (Settle). The
// waiter takes it (Attempting returns it; it waits until Settle told the
// caller the decision) or, when it gives up first, abandons it (Abandon,
// or Leave); whichever of Settle and Abandon comes last calls
// Config.ReleaseOffer, once, when the waiter does not hold the lock.
type Offer struct {
	w        *Waiter
	attached any
	until    time.Time    // the waiter's validity, if granted
	quorum   int32        // Terms.Quorum
	state    atomic.Int32 // offerSettled | offerAbandoned, as they happen
}

// The bits of Offer.state.
const (
	offerSettled   = 1
	offerAbandoned = 2
)

// NewOffer is OfferHead's callback that makes an offer of the waiter's
// value, with its Spec.ExpiryArg, the release being about to be sent at
// start. It returns the zero Offer to fill in, which may be part of the
// caller's own struct, and what the offer's Attached is to return. It is
// called while the Queues are locked, before the waiter can see the
// offer, and must not call them.
type NewOffer func(value string, expiryArg any, start time.Time) (o *Offer, attached any)

// OfferHead offers the release of from.Name to the head waiter of that
// name in this process, if there is one that may take it: one that waits
// (not attempting) with a value ready (Idle), that may take over, of
// another Owner, the releaser being allowed to hand over, and not after
// MaxHandOversInARow offers in a row. It returns the offer that newOffer
// made, or nil, without calling newOffer, when it makes none.
func (q *Queues) OfferHead(from Releaser, newOffer NewOffer) *Offer {
	if !q.Waiting() {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	nw := q.names[from.Name]
	if nw == nil || len(nw.queue) == 0 {
		return nil
	}
	if nw.handedInARow >= MaxHandOversInARow {
		nw.handedInARow = 0
		return nil
	}
	w := nw.queue[0]
	if w.busy || w.prepared == "" || w.offer != nil || w.owner == from.Owner || !from.MayHandOver || q.terms == nil {
		return nil
	}
	terms := q.terms(w.owner)
	if !terms.MayTakeOver {
		return nil
	}
	start := q.clock.Now()
	o, attached := newOffer(w.prepared, terms.ExpiryArg, start)
	o.w, o.attached, o.until, o.quorum = w, attached, start.Add(terms.Validity), int32(terms.Quorum)
	w.prepared = ""
	w.offer = o
	nw.handedInARow++
	return o
}

// Attached returns what OfferHead's newOffer returned with o.
func (o *Offer) Attached() any {
	return o.attached
}

// Owner returns the Spec.Owner of the waiter o is made to.
func (o *Offer) Owner() any {
	return o.w.owner
}

// Settle decides the offer once the releaser's round returned: granted
// when at least the waiter's Terms.Quorum of servers handed over (handed)
// and its validity (Terms.Validity from the start given to NewOffer) has
// not passed. It calls decided with the waiter's validity (zero when not
// granted), for the caller to tell its waiter, which waits for it; then
// it wakes the waiter to take the offer, or, when it abandoned it
// already, the offer is released. Settle reports whether the waiter holds
// the lock (or would have). It must be called once.
func (o *Offer) Settle(handed int, decided func(until time.Time)) bool {
	until := o.until
	granted := handed >= int(o.quorum) && o.w.nw.q.clock.Now().Before(until)
	if !granted {
		until = time.Time{}
	}
	decided(until)
	if o.state.Or(offerSettled)&offerAbandoned != 0 {
		o.release()
		return granted
	}
	o.w.Signal()
	return granted
}

// Abandon gives the offer up for a waiter that stopped waiting without
// taking it; what the offer set is released once it is settled (at once
// when it is already). It must be called at most once.
func (o *Offer) Abandon() {
	if o.state.Or(offerAbandoned)&offerSettled != 0 {
		o.release()
	}
}

// release calls Config.ReleaseOffer.
func (o *Offer) release() {
	if r := o.w.nw.q.releaseOffer; r != nil {
		r(o)
	}
}
