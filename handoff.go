package redsync

import (
	"context"
	"math/rand"
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
	for node := range m.pools {
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

// A listener keeps one pub/sub connection to one server, subscribed to the
// release channels that this process's waiters need, while there are any.
//
// Lock and Unlock never wait for it: want and unwant only change the set
// of wanted channels and wake the listener's goroutines, which do all the
// I/O, so a server that cannot be reached slows nobody but its listener.
// One goroutine (run) connects and receives; while connected, a second one
// (send) brings the server's subscriptions in line with the wanted set.
// run reconnects after a failure and stops once nothing is wanted.
type listener struct {
	h        *handoff
	node     int // the server's index in the pools given to New
	sub      redis.Subscriber
	inflight *inflightCount

	mu         sync.Mutex // guards the fields below, but active
	wanted     map[string]bool
	subscribed map[string]bool // what was asked of the current connection
	// unsubscribing is what was subscribed on the current connection and
	// asked to be unsubscribed, until the server confirms it: the server
	// still counts this process as a listener there (see staleListeners).
	unsubscribing map[string]bool
	running       bool          // run is running
	kick          chan struct{} // buffered: wakes send
	// active is len(subscribed) + len(unsubscribing), kept atomically so
	// that an Unlock can skip l.mu when the server counts no listener of
	// this process.
	active int32
}

// mayCount reports whether the server may count this listener as one
// listening on channel.
func (l *listener) mayCount(channel string) bool {
	if atomic.LoadInt32(&l.active) == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subscribed[channel] || l.unsubscribing[channel]
}

// countActive updates active; l.mu is held.
func (l *listener) countActive() {
	atomic.StoreInt32(&l.active, int32(len(l.subscribed)+len(l.unsubscribing)))
}

// want subscribes to channel, starting the listener if needed.
func (l *listener) want(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wanted == nil {
		l.wanted = make(map[string]bool)
		l.kick = make(chan struct{}, 1)
	}
	l.wanted[channel] = true
	l.wake()
	if !l.running {
		l.running = true
		l.inflight.add()
		go l.run()
	}
}

// unwant unsubscribes from channel; the listener stops once the server
// confirms that nothing is subscribed any more.
func (l *listener) unwant(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.wanted, channel)
	l.wake()
}

// wake tells send that the wanted set changed. l.mu is held.
func (l *listener) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// listenerBackoff is the pause before reconnecting after a failure.
const listenerBackoff = 100 * time.Millisecond

func (l *listener) run() {
	defer l.inflight.done()
	for {
		if l.idle() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := subscribe(ctx, l.sub)
		cancel()
		if err == nil {
			err = l.serve(conn)
			_ = conn.Close()
			if err == nil {
				return // nothing wanted any more: serve stopped the listener
			}
		}
		time.Sleep(listenerBackoff + time.Duration(rand.Int63n(int64(listenerBackoff))))
	}
}

// idle stops the listener when nothing is wanted; it reports whether it did.
func (l *listener) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.wanted) == 0 {
		l.running = false
		l.subscribed, l.unsubscribing = nil, nil
		l.countActive()
		return true
	}
	return false
}

// serve runs one connection: send keeps its subscriptions in line while
// serve dispatches what the server sends, until the connection fails (an
// error) or nothing is subscribed nor wanted any more (nil, with the
// listener stopped).
func (l *listener) serve(conn redis.Subscription) error {
	l.mu.Lock()
	l.subscribed = make(map[string]bool)
	l.unsubscribing = make(map[string]bool)
	l.countActive()
	l.wake()
	l.mu.Unlock()
	stop := make(chan struct{})
	sent := make(chan struct{})
	l.inflight.add()
	go func() {
		defer l.inflight.done()
		defer close(sent)
		l.send(conn, stop)
	}()
	defer func() {
		close(stop)
		<-sent
	}()
	for {
		ev, err := conn.Receive()
		if err != nil {
			return err
		}
		switch ev.Kind {
		case redis.Message, redis.Subscribed:
			l.h.heard(l.node, ev.Channel)
		case redis.Unsubscribed:
			l.mu.Lock()
			delete(l.unsubscribing, ev.Channel)
			done := ev.Count == 0 && len(l.wanted) == 0
			if done {
				l.running = false
			}
			l.countActive()
			l.mu.Unlock()
			if done {
				return nil
			}
		}
	}
}

// listenerQuitWait is how long a listener that wants nothing any more
// waits for its server to confirm that the connection is subscribed to
// nothing, before it gives the connection up: a stalled server confirms
// nothing, and Redsync.Wait waits for the listener.
const listenerQuitWait = time.Second

// send subscribes and unsubscribes conn until stop is closed. It is the
// only goroutine that calls Subscribe and Unsubscribe on conn. When nothing
// is wanted and serve is still running listenerQuitWait later, it closes
// conn, which makes serve's Receive fail (see redis.Subscription).
func (l *listener) send(conn redis.Subscription, stop chan struct{}) {
	var quit *time.Timer // runs while nothing is wanted
	var quitC <-chan time.Time
	defer func() {
		if quit != nil {
			quit.Stop()
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-l.kick:
		case <-quitC:
			l.mu.Lock()
			idle := len(l.wanted) == 0
			l.mu.Unlock()
			if idle {
				_ = conn.Close()
				return
			}
			quit, quitC = nil, nil
			continue
		}
		var add, drop []string
		l.mu.Lock()
		if len(l.wanted) == 0 {
			if quit == nil {
				quit = time.NewTimer(listenerQuitWait)
				quitC = quit.C
			}
		} else if quit != nil {
			quit.Stop()
			quit, quitC = nil, nil
		}
		for c := range l.wanted {
			if !l.subscribed[c] {
				l.subscribed[c] = true
				add = append(add, c)
			}
		}
		for c := range l.subscribed {
			if !l.wanted[c] {
				delete(l.subscribed, c)
				l.unsubscribing[c] = true
				drop = append(drop, c)
			}
		}
		l.countActive()
		if len(l.wanted) == 0 && len(l.subscribed) == 0 && len(drop) == 0 {
			// Nothing was subscribed on this connection, so no reply will
			// tell serve to stop: ask for one (an unsubscribe from nothing
			// answers with a count of zero).
			drop = append(drop, releaseChannelPrefix)
		}
		l.mu.Unlock()
		// A failure shows in Receive, which reconnects.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if len(add) > 0 {
			_ = conn.Subscribe(ctx, add...)
		}
		if len(drop) > 0 {
			_ = conn.Unsubscribe(ctx, drop...)
		}
		cancel()
	}
}

// A handOffer is an Unlock that hands the lock over to the head waiter of
// its process (see scripts.HandOver). The waiter holds the lock once a
// quorum of servers set its value within its validity, which counts from
// before the release was sent, as if the waiter had sent an acquire then:
// on each server the key went from the releaser's value to the waiter's in
// one step, so nobody else can have held it there in between.
//
// The releaser settles the offer when its round returns. The waiter takes
// it (takeOffer) or, when it gives up first, abandons it; whoever of the
// two comes last releases what the offer set when the waiter does not
// hold the lock.
type handOffer struct {
	w          *waiter
	value      string // the waiter's value
	valueArg   any    // value, converted once for the requests
	expiryArg  any    // the waiter's expiry in milliseconds
	hold       *holding
	start      time.Time // when the release was about to be sent
	handed     int32     // servers that set value (atomic)
	done       chan struct{}
	mu         sync.Mutex // guards the fields below
	settled    bool
	abandoned  bool
	grantedTil time.Time // the waiter's validity; zero when not granted
}

// offerHead hands the lock that m releases over to the head waiter of m's
// name in this process, if there is one that may take it: one that waits
// (not attempting), with a value ready, of another Mutex without fencing
// or shuffled pools. It returns nil otherwise.
func (h *handoff) offerHead(m *Mutex) *handOffer {
	if atomic.LoadInt32(&h.waited) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	nw := h.names[m.name]
	if nw == nil || len(nw.queue) == 0 {
		return nil
	}
	if nw.handedInARow >= maxHandOversInARow {
		nw.handedInARow = 0
		return nil
	}
	w := nw.queue[0]
	if w.busy || w.prepared == "" || w.offer != nil || w.m == m ||
		m.fencing || w.m.fencing || m.shuffle || w.m.shuffle {
		// (Fencing agrees on a token with the acquire; shuffled pools
		// number the servers differently in each Mutex.)
		return nil
	}
	o := &handOffer{
		w:         w,
		value:     w.prepared,
		valueArg:  w.prepared,
		expiryArg: w.m.args.expiryMillis,
		hold:      newHolding(w.prepared, len(m.pools)),
		start:     time.Now(),
		done:      make(chan struct{}),
	}
	w.prepared = ""
	w.offer = o
	nw.handedInARow++
	return o
}

// maxHandOversInARow bounds the hand-overs of a name in a row: the next
// Unlock releases as usual and announces it, so that waiters elsewhere get
// their chance even where a server cannot tell that they listen (a Redis
// Cluster counts only the subscribers of the node that runs the script,
// and a process that just started waiting may not be subscribed yet).
const maxHandOversInARow = 16

// replied records the reply of one server to the hand-over: handed, or an
// error after which the server may hold the waiter's value.
func (o *handOffer) replied(m *Mutex, node int, handed bool, err error) {
	if handed || (err != nil && err != ErrLockAlreadyExpired && !neverSent(err)) {
		if !o.hold.record(node) {
			// The hold was given up: this late reply is released here.
			m.releaseLate(m.pools[node], o.value)
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
	wm := o.w.m
	until := o.start.Add(wm.expiry - wm.drift())
	granted := int(atomic.LoadInt32(&o.handed)) >= wm.quorum && time.Now().Before(until)
	o.mu.Lock()
	o.settled = true
	if granted {
		o.grantedTil = until
	}
	abandoned := o.abandoned
	o.mu.Unlock()
	close(o.done)
	if abandoned {
		wm.releaseHold(o.hold)
		return granted
	}
	o.w.signal()
	return granted
}

// abandon gives the offer up for a waiter that stopped waiting without
// taking it; what the offer set is released once it is settled.
func (o *handOffer) abandon() {
	o.mu.Lock()
	o.abandoned = true
	settled := o.settled
	o.mu.Unlock()
	if settled {
		o.w.m.releaseHold(o.hold)
	}
}
