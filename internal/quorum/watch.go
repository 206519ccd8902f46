package quorum

import (
	"sync"
	"time"
)

// watchState is what a round keeps for its Watcher: which replies it
// counted, and which came after it was decided (late).
type watchState struct {
	watch Watcher // nil when nobody watches
	mu    sync.Mutex
	// decided: the round returned, replies from now on are late; guarded
	// by mu, as are the nodes' handed flags until decided is set.
	decided bool
	nodes   []watchedNode // by server
}

// watchedNode is what a watchState knows of one server's reply.
type watchedNode struct {
	// latency and handed are written by the server's goroutine before it
	// hands its reply to the round, so that the round may read them
	// after receiving the reply, or after decided is set.
	latency time.Duration
	handed  bool // the reply went to the round before it was decided
	counted bool // the round received the reply (the round's goroutine only)
}

// reset prepares w for a round on nodes servers watched by watch.
func (w *watchState) reset(watch Watcher, nodes int) {
	w.watch, w.decided = watch, false
	if cap(w.nodes) < nodes {
		w.nodes = make([]watchedNode, nodes)
	}
	w.nodes = w.nodes[:nodes]
	clear(w.nodes)
}

// handed records that node's reply goes to the round at once (NotSent).
func (w *watchState) handed(node int) {
	w.mu.Lock()
	w.nodes[node].handed = true
	w.mu.Unlock()
}

// handOrLate records node's reply as on its way to the round, or, after
// the round was decided, reports it as late. It runs on node's goroutine.
func (r *roundState) handOrLate(node int, ok bool, err error) {
	latency := r.eng.cfg.Clock.Now().Sub(r.start)
	r.mu.Lock()
	late := r.decided
	if !late {
		// The reply goes to the round next, which reports it, or drains
		// it when decided meanwhile.
		r.nodes[node].latency = latency
		r.nodes[node].handed = true
	}
	r.mu.Unlock()
	if late {
		r.watch.Late(Reply{Node: node, Outcome: outcomeOf(ok, err), Err: err}, latency)
	}
}

// watchCounted reports a reply the round counts.
func (w *watchState) watchCounted(reply Reply) {
	n := &w.nodes[reply.Node]
	n.counted = true
	if reply.Outcome == NotSent {
		w.watch.NotSent(reply.Node)
		return
	}
	w.watch.Reply(reply, n.latency)
}

// decide marks the round as decided, and reports as late the replies
// handed to it that it did not count: they are in the reply channel, or
// about to be. Replies that come after it are reported by their own
// goroutine (see handOrLate), and skipped here.
func (r *roundState) decide() {
	r.mu.Lock()
	r.decided = true
	r.mu.Unlock()
	pending := 0
	for _, n := range r.nodes {
		if n.handed && !n.counted {
			pending++
		}
	}
	for pending > 0 {
		reply := <-r.replies
		n := &r.nodes[reply.Node]
		if !n.handed || n.counted {
			continue
		}
		n.counted = true
		pending--
		r.watch.Late(reply, n.latency)
	}
}
