package handoff

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// Config is what Queues need from their owner.
type Config struct {
	// Servers are the servers the waiters lock on, in the caller's
	// numbering (server i, as Waiter.Handed counts them); nil
	// for one that cannot announce releases. Subscribe on each must not
	// panic (the caller recovers what its pools do).
	Servers []redis.Subscriber
	// Goroutines counts the listeners' goroutines; nil counts nothing.
	Goroutines Counter
	// Clock tells the time of the wake rules and hand-overs; nil is the
	// real clock.
	Clock Clock
}

// Queues are the waiters of one process, queued per name, and the
// listeners that tell them about releases. All methods are safe for
// concurrent use.
type Queues struct {
	clock     Clock
	listeners []*listener // per server; nil for one that cannot subscribe
	// enough is how many servers must announce a release before the head
	// waiter tries: a quorum, less the servers that cannot announce.
	enough int
	// waited is len(names), kept atomically so that every release of an
	// uncontended lock can skip mu, which all names share.
	waited atomic.Int32

	mu    sync.Mutex // guards names and the state of every Waiter
	names map[string]*nameWaiters
}

// nameWaiters are the waiters of this process for one name, in arrival
// order, and what the listeners last heard about the name.
type nameWaiters struct {
	q     *Queues
	name  string
	queue []*Waiter
	// watchers are the waiters that take no turn (Spec.Watch).
	watchers []*Waiter
	// heardAt[node] is when server node last announced a release of the
	// name, or confirmed a new subscription (a release may have gone
	// unheard before it).
	heardAt []time.Time
	// heldUntil is the validity of the lock while a waiter of this
	// process holds it: announcements heard meanwhile are late ones of
	// the release it took, not news for the next waiter.
	heldUntil time.Time
}

// New returns the Queues of cfg, with no waiter; listeners start with the
// first waiter of a name.
func New(cfg Config) *Queues {
	q := &Queues{clock: cfg.Clock, names: make(map[string]*nameWaiters)}
	if q.clock == nil {
		q.clock = realClock{}
	}
	goroutines := cfg.Goroutines
	if goroutines == nil {
		goroutines = noCount{}
	}
	q.listeners = make([]*listener, len(cfg.Servers))
	silent := 0
	for i, sub := range cfg.Servers {
		if sub == nil {
			silent++
			continue
		}
		q.listeners[i] = newListener(i, sub, goroutines, q.heard)
	}
	q.enough = max(len(cfg.Servers)/2+1-silent, 1)
	return q
}

// noCount is the Counter of a Config without one.
type noCount struct{}

func (noCount) Add()  {}
func (noCount) Done() {}

// Waiting reports whether any waiter of this process queues, without
// taking the lock that all names share: a hint for fast paths.
func (q *Queues) Waiting() bool {
	return q.waited.Load() != 0
}

// Join queues w, a zero Waiter that may be part of the caller's own
// struct, for spec.Name, with its failed attempt started at since, and
// subscribes to the name's releases on every listener. wake is signalled
// (without blocking: give it a buffer of one) when w should try again.
// w must leave (Leave) before it is joined again.
func (q *Queues) Join(w *Waiter, spec Spec, since time.Time, wake chan<- struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.joinLocked(w, spec, since, wake)
}

// JoinBehind is Join, with the attempt starting now, if other waiters of
// this process already queue for spec.Name (a first try would find the
// lock held or reserved for them); it reports whether it queued w.
func (q *Queues) JoinBehind(w *Waiter, spec Spec, wake chan<- struct{}) bool {
	if !q.Waiting() {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if nw := q.names[spec.Name]; nw == nil || len(nw.queue) == 0 {
		return false
	}
	q.joinLocked(w, spec, q.clock.Now(), wake)
	return true
}

// joinLocked is Join with q.mu held.
func (q *Queues) joinLocked(w *Waiter, spec Spec, since time.Time, wake chan<- struct{}) {
	nw := q.names[spec.Name]
	if nw == nil {
		nw = &nameWaiters{q: q, name: spec.Name, heardAt: make([]time.Time, len(q.listeners))}
		q.names[spec.Name] = nw
		q.waited.Add(1)
		for _, l := range q.listeners {
			if l != nil {
				l.want(nw.name)
			}
		}
	}
	*w = Waiter{nw: nw, owner: spec.Owner, wake: wake, since: since, busy: true, watch: spec.Watch}
	if spec.Watch {
		nw.watchers = append(nw.watchers, w)
		q.wakeIfFree(nw, w)
		return
	}
	nw.queue = append(nw.queue, w)
	if len(nw.queue) == 1 {
		// Released (or newly listened to) after the try started: the try
		// may have missed it.
		q.wakeHeadIfFree(nw)
	}
}

// wakeHeadIfFree signals the head waiter of nw, and every watcher, when
// enough servers announced a release since its last attempt started. q.mu
// is held.
func (q *Queues) wakeHeadIfFree(nw *nameWaiters) {
	if len(nw.queue) > 0 {
		q.wakeIfFree(nw, nw.queue[0])
	}
	for _, w := range nw.watchers {
		q.wakeIfFree(nw, w)
	}
}

// wakeIfFree signals w, a waiter of nw, when enough servers announced a
// release since its last attempt started. q.mu is held.
func (q *Queues) wakeIfFree(nw *nameWaiters, w *Waiter) {
	heard := 0
	for _, at := range nw.heardAt {
		if at.After(w.since) {
			heard++
		}
	}
	if heard >= q.enough {
		w.Signal()
	}
}

// heard records that server node announced a release of channel, or
// confirmed a new subscription to it, and wakes the head waiter of its name
// once enough servers did. Announcements heard before the validity of a
// lock that a waiter here took are late ones of the release it took.
func (q *Queues) heard(node int, channel, payload string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	name, ok := releaseName(channel)
	if !ok {
		return
	}
	nw := q.names[name]
	if nw == nil {
		return
	}
	if waited, floor, value, ok := parseHanded(payload); ok {
		nw.handed(node, waited, floor, value)
		return // the lock is not free: it changed hands
	}
	now := q.clock.Now()
	if now.Before(nw.heldUntil) {
		return // a late announcement of the release the holder here took
	}
	nw.heardAt[node] = now
	q.wakeHeadIfFree(nw)
}

// HandedOverHere records that this process released name on a quorum of
// servers by handing it over: whoever held it here no longer does, so the
// announcements heard from now on are not late ones of its acquisition
// (an empty one then means the key is free: an outsiders' window). It
// wakes nobody: the key went to a waiter, of this process or another.
// (If that waiter is of this process and took the lock already, its
// validity is forgotten too: a late announcement then costs the head one
// attempt.)
func (q *Queues) HandedOverHere(name string) {
	if !q.Waiting() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if nw := q.names[name]; nw != nil {
		nw.heldUntil = time.Time{}
	}
}

// ReleasedHere records that this process released name on a quorum of
// servers: the head waiter need not wait for the servers' announcements.
func (q *Queues) ReleasedHere(name string) {
	if !q.Waiting() {
		return // nobody in this process waits for any lock
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	nw := q.names[name]
	if nw == nil {
		return
	}
	now := q.clock.Now()
	nw.heldUntil = time.Time{} // whoever held it here released it
	for i := range nw.heardAt {
		nw.heardAt[i] = now
	}
	q.wakeHeadIfFree(nw)
}

// handed records that server node handed the key to value, which had
// queued there for waited milliseconds, for the waiter of this process
// that queues with value, if any, and wakes it. q.mu is held.
func (nw *nameWaiters) handed(node int, waited int64, floor uint64, value string) {
	for _, w := range nw.queue {
		if w.value == value && w.handed != nil && node < len(w.handed) {
			w.handed[node] = max(waited, 0) + 1
			w.floors[node] = floor
			w.Signal()
			return
		}
	}
}

// parseHanded reads the announcement of a hand-over, "h<waited>:<value>",
// or "f<waited>,<floor>:<value>" to a fenced waiter (see the release
// script), and reports whether payload is one; floor is 0 in the first.
func parseHanded(payload string) (waited int64, floor uint64, value string, ok bool) {
	if len(payload) < 3 || (payload[0] != 'h' && payload[0] != 'f') {
		return 0, 0, "", false
	}
	numbers, value, ok := strings.Cut(payload[1:], ":")
	if !ok || value == "" {
		return 0, 0, "", false
	}
	if payload[0] == 'f' {
		var floorText string
		if numbers, floorText, ok = strings.Cut(numbers, ","); !ok {
			return 0, 0, "", false
		}
		var err error
		if floor, err = strconv.ParseUint(floorText, 10, 64); err != nil || floor == 0 {
			return 0, 0, "", false
		}
	}
	waited, err := strconv.ParseInt(numbers, 10, 64)
	if err != nil {
		return 0, 0, "", false
	}
	return waited, floor, value, true
}
