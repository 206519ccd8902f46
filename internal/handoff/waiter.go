package handoff

import (
	"slices"
	"time"
)

// Spec describes a waiter to the Queues: what it waits for, and who it
// is. It does not change while the waiter queues.
type Spec struct {
	Name  string // the lock's name; waiters queue per name
	Owner any    // who waits, for the caller's own use
	// Watch: the waiter takes no turn among the name's waiters (a
	// MultiMutex, which waits for several names at once, must not hold
	// back the waiters of one of them). It is woken whenever enough
	// servers announced a release of the name since its last attempt
	// started, or this process released it, and never heads the queue.
	Watch bool
}

// A Waiter is one caller waiting for a name, from Join or JoinBehind until
// Leave. Its methods may be called by the goroutine that waits, while
// listeners of other goroutines change its state.
type Waiter struct {
	nw    *nameWaiters // its queue
	owner any          // Spec.Owner
	wake  chan<- struct{}
	since time.Time // when its last attempt started; guarded by q.mu
	watch bool      // Spec.Watch

	// Guarded by q.mu: busy is set while the waiter attempts; value is
	// the value it queues with in the servers' fleet queues (see Queue),
	// and handed[node] is, for each server node that announced handing
	// the key to value, 1 + the milliseconds it had queued there, or 0;
	// floors[node] the fencing floor it announced (0 unfenced).
	busy   bool
	value  string
	handed []int64
	floors []uint64
}

// Attempting records that w starts an attempt at start: only releases
// announced from then on count for its next wake-up.
func (w *Waiter) Attempting(start time.Time) {
	w.nw.q.mu.Lock()
	defer w.nw.q.mu.Unlock()
	w.busy = true
	w.since = start
}

// Idle records that w waits.
func (w *Waiter) Idle() {
	w.nw.q.mu.Lock()
	w.busy = false
	w.nw.q.mu.Unlock()
}

// Queue records that w queues with value in the servers' fleet queues,
// from now on: the servers' announcements that they handed the key to
// value are recorded for it (see Handed) and wake it. It forgets what was
// recorded for the value before.
func (w *Waiter) Queue(value string) {
	w.nw.q.mu.Lock()
	defer w.nw.q.mu.Unlock()
	w.value = value
	if w.handed == nil {
		w.handed = make([]int64, len(w.nw.heardAt))
		w.floors = make([]uint64, len(w.nw.heardAt))
	}
	clear(w.handed)
	clear(w.floors)
}

// Handed copies into dst, for each server, 1 + the milliseconds the
// value given to Queue had queued there before the server handed the key
// to it, or 0 where no hand-over was announced, and into floors, when not
// nil, the fencing floor each announced (0 where none); it returns how
// many servers announced one.
func (w *Waiter) Handed(dst []int64, floors []uint64) int {
	w.nw.q.mu.Lock()
	defer w.nw.q.mu.Unlock()
	n := 0
	for i, v := range w.handed {
		if i < len(dst) {
			dst[i] = v
		}
		if i < len(floors) {
			floors[i] = w.floors[i]
		}
		if v != 0 {
			n++
		}
	}
	return n
}

// Head reports whether w is first in its queue.
func (w *Waiter) Head() bool {
	w.nw.q.mu.Lock()
	defer w.nw.q.mu.Unlock()
	return len(w.nw.queue) > 0 && w.nw.queue[0] == w
}

// Leave takes w out of its queue. When w was the head and did not get the lock (acquired
// false), the next waiter is woken to try: the lock may be free. When it
// got the lock, valid until heldUntil, the releases heard so far were the
// one it took: they do not wake the next waiter, nor do late
// announcements of it heard before heldUntil. The last waiter of a name
// unsubscribes from its releases.
func (w *Waiter) Leave(acquired bool, heldUntil time.Time) {
	q := w.nw.q
	q.mu.Lock()
	defer q.mu.Unlock()
	w.busy, w.value = true, ""
	nw := w.nw
	if q.names[nw.name] != nw {
		return // left already
	}
	if acquired {
		clear(nw.heardAt)
		nw.heldUntil = heldUntil
	}
	if w.watch {
		if i := slices.Index(nw.watchers, w); i >= 0 {
			nw.watchers = slices.Delete(nw.watchers, i, i+1)
		}
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
	if len(nw.queue) == 0 && len(nw.watchers) == 0 {
		delete(q.names, nw.name)
		q.waited.Add(-1)
		for _, l := range q.listeners {
			if l != nil {
				l.unwant(nw.name)
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
	Queued   int // waiters queued
	Watching int // waiters that watch (Spec.Watch)
	// HeadWaiting: the head waits (does not attempt); HeadQueued: with a
	// value in the fleet queues; HeadWoken: a wake-up is pending for it.
	HeadWaiting, HeadQueued, HeadWoken bool
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
	if nw == nil || len(nw.queue)+len(nw.watchers) == 0 {
		return NameState{}
	}
	s := NameState{Queued: len(nw.queue), Watching: len(nw.watchers), Servers: len(nw.heardAt), Enough: q.enough}
	var since time.Time
	if len(nw.queue) > 0 {
		head := nw.queue[0]
		s.HeadWaiting, s.HeadQueued, s.HeadWoken, since = !head.busy, head.value != "", len(head.wake) > 0, head.since
	}
	for _, at := range nw.heardAt {
		if !at.IsZero() {
			s.Confirmed++
		}
		if len(nw.queue) > 0 && at.After(since) {
			s.Heard++
		}
	}
	for _, l := range q.listeners {
		if l != nil {
			s.Listeners++
			if l.mayCount(nw.name) {
				s.Listening++
			}
		}
	}
	return s
}
