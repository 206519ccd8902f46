package redsync

import (
	"context"
	"time"

	"github.com/quorumlock/redsync/internal/quorum"
)

// watchRound returns what reports the replies of a round of op to the
// Observer, or nil when the Mutex is not observed.
func (m *Mutex) watchRound(ctx context.Context, op Op, attempt int) *roundWatch {
	if m.obs == nil {
		return nil
	}
	return &roundWatch{obs: m.obs, ctx: ctx, op: op, name: m.name, attempt: attempt}
}

// roundWatch is the one bridge from the quorum engine's Watcher to the
// Observer: it reports each reply of one round as a NodeEvent, those the
// round counts from the round's goroutine, the late ones from the
// goroutine that received them (see quorum.Watcher).
type roundWatch struct {
	obs     Observer
	ctx     context.Context
	op      Op
	name    string
	attempt int
}

// Reply reports a reply that the round counts.
func (w *roundWatch) Reply(r quorum.Reply, latency time.Duration) {
	w.report(r, latency, false)
}

// NotSent reports a request the round did not send (ErrBacklogged).
func (w *roundWatch) NotSent(node int) {
	w.obs.Node(w.ctx, NodeEvent{Op: w.op, Name: w.name, Attempt: w.attempt, Node: node, Outcome: NodeNotSent, Err: ErrBacklogged})
}

// NoReply reports a server that missed the deadline, with err.
func (w *roundWatch) NoReply(node int, err error, timeout time.Duration) {
	w.obs.Node(w.ctx, NodeEvent{Op: w.op, Name: w.name, Attempt: w.attempt, Node: node, Outcome: NodeTimeout, Err: err, Latency: timeout})
}

// Late reports a reply that came after the round was decided.
func (w *roundWatch) Late(r quorum.Reply, latency time.Duration) {
	w.report(r, latency, true)
}

// report reports one server's reply as its NodeEvent.
func (w *roundWatch) report(r quorum.Reply, latency time.Duration, late bool) {
	e := NodeEvent{Op: w.op, Name: w.name, Attempt: w.attempt, Node: r.Node, Latency: latency, Late: late}
	switch {
	case r.Outcome == quorum.OK:
		e.Outcome = NodeOK
	case r.Outcome == quorum.NotSent:
		e.Outcome, e.Err, e.Latency = NodeNotSent, ErrBacklogged, 0
	case r.Err == ErrLockAlreadyExpired:
		e.Outcome, e.Err = NodeExpired, r.Err
	case r.Outcome == quorum.Failed:
		e.Outcome, e.Err = NodeError, r.Err
	default:
		e.Outcome = NodeRefused
	}
	w.obs.Node(w.ctx, e)
}
