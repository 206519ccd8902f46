package handoff

import "time"

// Spec describes a waiter to the Queues: what it waits for, and who it
// is. It does not change while the waiter queues.
type Spec struct {
	Name    string // the lock's name; waiters queue per name
	Channel string // ReleaseChannel(Name), made once by the caller
	// Owner identifies who waits (compared with ==): a releaser never
	// hands the lock over to a waiter of its own Owner. Config.Terms
	// tells what a hand-over to it must be.
	Owner any
}

// Terms are what the waiters of an Owner accept of a hand-over (see
// Config.Terms).
type Terms struct {
	// MayTakeOver: the waiters may be handed the lock (not, for example,
	// when their acquisitions must agree on a fencing token).
	MayTakeOver bool
	// ExpiryArg is the waiter's expiry as the hand-over request sends it.
	ExpiryArg any
	// Validity is how long a hand-over holds the lock for the waiter,
	// counted from when the release was about to be sent (the expiry
	// less the clock drift).
	Validity time.Duration
	// Quorum is how many servers must hand over for the waiter to hold
	// the lock.
	Quorum int
}

// A Waiter is one caller waiting for a name, from Join or JoinBehind until
// Leave. Its methods may be called by the goroutine that waits, while
// releasers and listeners of other goroutines change its state.
//
// A Waiter is kept small (its names are its queue's, its terms are asked
// for when an offer is made): one is made per wait.
type Waiter struct {
	nw    *nameWaiters // its queue
	owner any          // Spec.Owner
	wake  chan<- struct{}
	since time.Time // when its last attempt started; guarded by q.mu

	// Guarded by q.mu: busy is set while the waiter attempts or takes an
	// offer, prepared is the value a releaser may hand the lock over to
	// while it waits ("" when it may not), and offer is the hand-over made
	// to it that it has not taken yet.
	busy     bool
	prepared string
	offer    *Offer
}

// Attempting records that w starts an attempt at start: only releases
// announced from then on count for its next wake-up. When a releaser has
// handed the lock over to w meanwhile, it returns that offer instead,
// which w must take (wait for Settle's decision) or abandon, rather than
// attempt.
func (w *Waiter) Attempting(start time.Time) *Offer {
	w.nw.q.mu.Lock()
	defer w.nw.q.mu.Unlock()
	w.busy = true
	w.prepared = ""
	if o := w.offer; o != nil {
		w.offer = nil
		return o
	}
	w.since = start
	return nil
}

// Idle records that w waits, ready to be handed the lock with value; ""
// when it may not be.
func (w *Waiter) Idle(value string) {
	w.nw.q.mu.Lock()
	w.busy = false
	w.prepared = value
	w.nw.q.mu.Unlock()
}

// Head reports whether w is first in its queue.
func (w *Waiter) Head() bool {
	w.nw.q.mu.Lock()
	defer w.nw.q.mu.Unlock()
	return len(w.nw.queue) > 0 && w.nw.queue[0] == w
}

// Leave takes w out of its queue; an offer made to it and not taken is
// abandoned. When w was the head and did not get the lock (acquired
// false), the next waiter is woken to try: the lock may be free. When it
// got the lock, valid until heldUntil, the releases heard so far were the
// one it took: they do not wake the next waiter, nor do late
// announcements of it heard before heldUntil. The last waiter of a name
// unsubscribes from its releases.
func (w *Waiter) Leave(acquired bool, heldUntil time.Time) {
	q := w.nw.q
	q.mu.Lock()
	defer q.mu.Unlock()
	w.busy, w.prepared = true, ""
	if o := w.offer; o != nil {
		// Handed the lock over while it gave up: it is released.
		w.offer = nil
		o.Abandon()
	}
	nw := w.nw
	if q.names[nw.name] != nw {
		return // left already
	}
	if acquired {
		clear(nw.heardAt)
		nw.heldUntil = heldUntil
	}
	for i, other := range nw.queue {
		if other != w {
			continue
		}
		nw.queue = append(nw.queue[:i], nw.queue[i+1:]...)
		if i == 0 && !acquired && len(nw.queue) > 0 {
			// The lock may be free: the new head tries at once.
			nw.queue[0].Signal()
		}
		break
	}
	if len(nw.queue) == 0 {
		delete(q.names, nw.name)
		q.waited.Add(-1)
		for _, l := range q.listeners {
			if l != nil {
				l.unwant(nw.channel)
			}
		}
	}
}

// Signal wakes w to try again, unless a wake-up is pending already.
func (w *Waiter) Signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// NameState is what the Queues know of the waiters of one name, for
// tests that wait for a state (see State).
type NameState struct {
	Queued int // waiters queued
	// HeadWaiting: the head waits (neither attempts nor takes an offer);
	// HeadPrepared: with a value a releaser may hand the lock over to;
	// HeadWoken: a wake-up is pending for it.
	HeadWaiting, HeadPrepared, HeadWoken bool
	// Servers is how many servers could announce; Confirmed how many
	// announced or confirmed the subscription at least once; Heard how
	// many since the head's last attempt started; Enough how many wake
	// the head.
	Servers, Confirmed, Heard, Enough int
	// Listening is how many listeners the servers may count as listening
	// for the name, of Listeners.
	Listening, Listeners int
}

// State returns what the Queues know of name; the zero NameState when
// nobody waits for it.
func (q *Queues) State(name string) NameState {
	q.mu.Lock()
	defer q.mu.Unlock()
	nw := q.names[name]
	if nw == nil || len(nw.queue) == 0 {
		return NameState{}
	}
	head := nw.queue[0]
	s := NameState{Queued: len(nw.queue), HeadWaiting: !head.busy, HeadPrepared: !head.busy && head.prepared != "",
		HeadWoken: len(head.wake) > 0, Servers: len(nw.heardAt), Enough: q.enough}
	for _, at := range nw.heardAt {
		if !at.IsZero() {
			s.Confirmed++
		}
		if at.After(head.since) {
			s.Heard++
		}
	}
	for _, l := range q.listeners {
		if l != nil {
			s.Listeners++
			if l.mayCount(nw.channel) {
				s.Listening++
			}
		}
	}
	return s
}
