package redsync

import (
	"sync/atomic"
	"time"
)

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
		m.cfg.fencing || w.m.cfg.fencing || m.cfg.shuffle || w.m.cfg.shuffle {
		// (Fencing agrees on a token with the acquire; shuffled pools
		// number the servers differently in each Mutex.)
		return nil
	}
	o := &handOffer{
		w:         w,
		value:     w.prepared,
		valueArg:  w.prepared,
		expiryArg: w.m.args.expiryMillis,
		hold:      newHolding(w.prepared, len(m.nodes.pools)),
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
	wm := o.w.m
	until := o.start.Add(wm.cfg.expiry - wm.drift())
	granted := int(atomic.LoadInt32(&o.handed)) >= wm.nodes.quorum && time.Now().Before(until)
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
