package redsync

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// Hand-off: instead of sleeping a random delay between tries, a waiter for
// a lock learns when to try again.
//
//   - A refused acquire reports the key's remaining time to live, so a
//     waiter never sleeps past the moment a quorum of servers must be free.
//   - Unlock publishes on the lock's release channel (releaseChannel). The
//     Redsync keeps, per server whose pool is a redis.Subscriber, one
//     pub/sub connection (a listener) subscribed to the channels its
//     waiters need, and wakes them on a message from any server.
//   - Waiters of one process queue per name, first come first served: only
//     the head tries on a wake-up, so they do not stampede, and they take
//     turns.
//   - When the release reaches a listener, the release script leaves a
//     short-lived placeholder (handoffMarker) instead of deleting the key:
//     a waiter's acquire script takes the key over from it, while a plain
//     SET NX, such as the first try of a newcomer or the releaser trying
//     again at once, is refused. Those who waited go first.
//   - When the head waiter is in the same process as the releaser, the
//     release itself hands the lock over (see handOffer): on each server
//     where nobody but this process listens for the name, the script sets
//     the key from the releaser's value straight to the waiter's, and the
//     waiter holds the lock once a quorum did, without a request of its
//     own: the lock changes hands in one round trip instead of two.

// handoffMarker is the value the release script leaves in the key for the
// waiters it notified. It cannot be a lock value: it begins with
// reservedValuePrefix, which no lock value may (see checkValue).
const handoffMarker = "redsync:handoff"

// maxHandoffGrace bounds how long the placeholder keeps a released lock for
// the waiters that were told about it.
const maxHandoffGrace = 50 * time.Millisecond

// releaseChannel is the pub/sub channel on which releases of name are
// announced.
func releaseChannel(name string) string {
	return releaseChannelPrefix + name
}

const releaseChannelPrefix = "redsync:released:"

// handoff is the per-Redsync state of the waiters and listeners.
type handoff struct {
	mu        sync.Mutex // guards names, listeners and the waiters' since
	names     map[string]*nameWaiters
	listeners []*listener // one per pool given to New; nil for a pool that cannot subscribe
	// started points to listeners once they were built (at the first
	// waiter), for those who read them without h.mu.
	started atomic.Pointer[[]*listener]
	// enough is how many servers must announce a release before the head
	// waiter tries: a quorum, less the servers that cannot announce.
	enough int
	// waited is len(names), kept atomically so that every Unlock of an
	// uncontended lock can skip h.mu, which all names share.
	waited int32
}

// nameWaiters are the waiters of this process for one name, in arrival
// order, and what the listeners last heard about the name.
type nameWaiters struct {
	channel string
	queue   []*waiter
	// heardAt[node] is when server node last announced a release of the
	// name, or confirmed a new subscription (a release may have gone
	// unheard before it).
	heardAt []time.Time
	// heldUntil is the validity of the lock while a waiter of this
	// process holds it: announcements heard meanwhile are late ones of
	// the release it took, not news for the next waiter.
	heldUntil time.Time
	// handedInARow counts the hand-overs offered in a row (see
	// maxHandOversInARow).
	handedInARow int
}

// A waiter is one Lock call waiting for a name.
type waiter struct {
	h     *handoff
	m     *Mutex // the Mutex that waits
	name  string
	since time.Time     // when its last attempt started; guarded by h.mu
	wake  chan struct{} // signalled when the head should try again; buffered

	// Guarded by h.mu: busy is set while the waiter attempts or takes an
	// offer, prepared is the value a releaser may hand the lock over to
	// while it waits ("" when it may not), and offer is the hand-over made
	// to it that it has not taken yet.
	busy     bool
	prepared string
	offer    *handOffer
}

// join queues a waiter of m whose failed try started at since, and
// subscribes to the name's releases on every listener.
func (h *handoff) join(m *Mutex, since time.Time) *waiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.joinLocked(m, since)
}

// joinBehind queues a waiter of m, without a try first, if other waiters
// of this process already queue for its name: a first try would find the
// lock held or reserved for them. It returns nil when nobody queues.
func (h *handoff) joinBehind(m *Mutex) *waiter {
	if atomic.LoadInt32(&h.waited) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if nw := h.names[m.name]; nw == nil || len(nw.queue) == 0 {
		return nil
	}
	return h.joinLocked(m, time.Now())
}

// joinLocked is join with h.mu held.
func (h *handoff) joinLocked(m *Mutex, since time.Time) *waiter {
	rs, name := m.rs, m.name
	w := &waiter{h: h, m: m, name: name, since: since, wake: make(chan struct{}, 1), busy: true}
	if h.started.Load() == nil {
		h.listeners = make([]*listener, len(rs.pools))
		silent := 0
		for i, pool := range rs.pools {
			if sub, ok := pool.(redis.Subscriber); ok {
				h.listeners[i] = &listener{h: h, node: i, sub: sub, inflight: &rs.inflight}
			} else {
				silent++
			}
		}
		h.enough = len(rs.pools)/2 + 1 - silent
		if h.enough < 1 {
			h.enough = 1
		}
		h.started.Store(&h.listeners)
	}
	if h.names == nil {
		h.names = make(map[string]*nameWaiters)
	}
	nw := h.names[name]
	if nw == nil {
		nw = &nameWaiters{channel: releaseChannel(name), heardAt: make([]time.Time, len(h.listeners))}
		h.names[name] = nw
		atomic.AddInt32(&h.waited, 1)
		for _, l := range h.listeners {
			if l != nil {
				l.want(nw.channel)
			}
		}
	}
	nw.queue = append(nw.queue, w)
	if len(nw.queue) == 1 {
		// Released (or newly listened to) after the try started: the try
		// may have missed it.
		h.wakeHeadIfFree(nw)
	}
	return w
}

// wakeHeadIfFree signals the head waiter of nw when enough servers
// announced a release since its last attempt started. h.mu is held.
func (h *handoff) wakeHeadIfFree(nw *nameWaiters) {
	if len(nw.queue) == 0 {
		return
	}
	head := nw.queue[0]
	heard := 0
	for _, at := range nw.heardAt {
		if at.After(head.since) {
			heard++
		}
	}
	if heard >= h.enough {
		head.signal()
	}
}

// attempting records that w starts an attempt: only releases announced
// from now on count for its next wake-up. When a releaser has handed the
// lock over to w meanwhile, it returns that offer instead, which w must
// take (see takeOffer) rather than attempt.
func (w *waiter) attempting(start time.Time) *handOffer {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.busy = true
	w.prepared = ""
	if o := w.offer; o != nil {
		w.offer = nil
		return o
	}
	w.since = start
	return nil
}

// idle records that w waits, ready to be handed the lock with value (see
// handOffer); "" when it may not be.
func (w *waiter) idle(value string) {
	w.h.mu.Lock()
	w.busy = false
	w.prepared = value
	w.h.mu.Unlock()
}

// head reports whether w is first in its queue.
func (w *waiter) head() bool {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	nw := w.h.names[w.name]
	return nw != nil && len(nw.queue) > 0 && nw.queue[0] == w
}

// leave takes w out of its queue. When w was the head and did not get the
// lock, the next waiter is woken to try: the lock may be free. When it got
// the lock, valid until heldUntil, the releases heard so far were the one
// it took: they do not wake the next waiter, nor do late announcements of
// it heard while w holds the lock.
func (w *waiter) leave(acquired bool, heldUntil time.Time) {
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	w.busy, w.prepared = true, ""
	if o := w.offer; o != nil {
		// Handed the lock over while it gave up: it is released.
		w.offer = nil
		o.abandon()
	}
	nw := h.names[w.name]
	if nw == nil {
		return
	}
	if acquired {
		for i := range nw.heardAt {
			nw.heardAt[i] = time.Time{}
		}
		nw.heldUntil = heldUntil
	}
	for i, q := range nw.queue {
		if q != w {
			continue
		}
		nw.queue = append(nw.queue[:i], nw.queue[i+1:]...)
		if i == 0 && !acquired && len(nw.queue) > 0 {
			// The lock may be free: the new head tries at once.
			nw.queue[0].signal()
		}
		break
	}
	if len(nw.queue) == 0 {
		delete(h.names, w.name)
		atomic.AddInt32(&h.waited, -1)
		for _, l := range h.listeners {
			if l != nil {
				l.unwant(nw.channel)
			}
		}
	}
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// heard records that server node announced a release of channel, or
// confirmed a new subscription to it, and wakes the head waiter of its name
// once enough servers did.
func (h *handoff) heard(node int, channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(channel) < len(releaseChannelPrefix) {
		return
	}
	nw := h.names[channel[len(releaseChannelPrefix):]]
	if nw == nil {
		return
	}
	now := time.Now()
	if now.Before(nw.heldUntil) {
		return // a late announcement of the release the holder here took
	}
	nw.heardAt[node] = now
	h.wakeHeadIfFree(nw)
}

// staleListeners returns the servers (bit i: server i in m's order, the
// first 64) on which a listener of this process may still be counted as
// listening for m's name while no waiter of this process wants it: a
// Lock that waited leaves the queue when it returns, but its server
// learns of that only once the listener's UNSUBSCRIBE arrives, which an
// Unlock sent right after may overtake. m's release leaves that listener
// out when it counts the waiters that heard it, so that it never keeps
// the key as a placeholder for nobody.
func (h *handoff) staleListeners(m *Mutex) uint64 {
	listeners := h.started.Load()
	if listeners == nil {
		return 0 // nobody in this process ever waited
	}
	var stale uint64
	for node := range m.nodes.pools {
		if node >= 64 {
			break
		}
		if l := (*listeners)[m.serverIndex(node)]; l != nil && l.mayCount(m.channel) {
			stale |= 1 << uint(node)
		}
	}
	if stale == 0 || atomic.LoadInt32(&h.waited) == 0 {
		return stale
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if nw := h.names[m.name]; nw != nil && len(nw.queue) > 0 {
		return 0 // they listen for waiters of this process
	}
	return stale
}

// releasedHere records that a Mutex of this process released name on a
// quorum of servers: the head waiter here need not wait for the servers'
// announcements to reach it.
func (h *handoff) releasedHere(name string) {
	if atomic.LoadInt32(&h.waited) == 0 {
		return // nobody in this process waits for any lock
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	nw := h.names[name]
	if nw == nil {
		return
	}
	now := time.Now()
	nw.heldUntil = time.Time{} // whoever held it here released it
	for i := range nw.heardAt {
		nw.heardAt[i] = now
	}
	h.wakeHeadIfFree(nw)
}
