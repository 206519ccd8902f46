package handoff

import (
	"sync"
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
// value within its validity, which counts from Start, before the release
// was sent, as if the waiter had sent an acquire then: on each server the
// key went from the releaser's value to the waiter's in one step, so
// nobody else can have held it there in between.
//
// The releaser settles the offer when its round returns (Settle). The
// waiter takes it (Attempting returns it; it waits for Done) or, when it
// gives up first, abandons it (Abandon, or Leave); whichever of Settle and
// Abandon comes last calls Config.ReleaseOffer, once, when the waiter does
// not hold the lock.
type Offer struct {
	Value     string    // the waiter's value, which the release sets
	ExpiryArg any       // the waiter's Spec.ExpiryArg
	Start     time.Time // when the release was about to be sent

	w        *Waiter
	attached any
	done     chan struct{}

	mu        sync.Mutex // guards settled and abandoned
	settled   bool
	abandoned bool
}

// OfferHead offers the release of from.Name to the head waiter of that
// name in this process, if there is one that may take it: one that waits
// (not attempting) with a value ready (Idle), that may take over, of
// another Owner, the releaser being allowed to hand over, and not after
// MaxHandOversInARow offers in a row. attach is called with the offer
// before the waiter can see it, while the Queues are locked (it must not
// call them); what it returns is the offer's Attached. OfferHead returns
// nil, without calling attach, when it makes no offer.
func (q *Queues) OfferHead(from Releaser, attach func(*Offer) any) *Offer {
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
	if w.busy || w.prepared == "" || w.offer != nil || w.spec.Owner == from.Owner ||
		!w.spec.MayTakeOver || !from.MayHandOver {
		return nil
	}
	o := &Offer{
		Value:     w.prepared,
		ExpiryArg: w.spec.ExpiryArg,
		Start:     q.clock.Now(),
		w:         w,
		done:      make(chan struct{}),
	}
	o.attached = attach(o)
	w.prepared = ""
	w.offer = o
	nw.handedInARow++
	return o
}

// Attached returns what OfferHead's attach returned for o.
func (o *Offer) Attached() any {
	return o.attached
}

// Owner returns the Spec.Owner of the waiter o is made to.
func (o *Offer) Owner() any {
	return o.w.spec.Owner
}

// Done is closed once the offer is settled.
func (o *Offer) Done() <-chan struct{} {
	return o.done
}

// Settle decides the offer once the releaser's round returned: granted
// when at least the waiter's quorum of servers handed over (handed) and
// its validity, counted from Start, has not passed. When granted, grant
// (if not nil) is called with the waiter's validity before Done is
// closed. Then the waiter is woken to take the offer, or, when it
// abandoned it already, the offer is released. Settle reports whether the
// waiter holds the lock (or would have). It must be called once.
func (o *Offer) Settle(handed int, grant func(until time.Time)) bool {
	spec := &o.w.spec
	until := o.Start.Add(spec.Validity)
	granted := handed >= spec.Quorum && o.w.q.clock.Now().Before(until)
	if granted && grant != nil {
		grant(until)
	}
	o.mu.Lock()
	o.settled = true
	abandoned := o.abandoned
	o.mu.Unlock()
	close(o.done)
	if abandoned {
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
	o.mu.Lock()
	o.abandoned = true
	settled := o.settled
	o.mu.Unlock()
	if settled {
		o.release()
	}
}

// release calls Config.ReleaseOffer.
func (o *Offer) release() {
	if r := o.w.q.releaseOffer; r != nil {
		r(o)
	}
}
