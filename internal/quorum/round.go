package quorum

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/clock"
	"github.com/quorumlock/redsync/redis"
)

// Run runs rd.Op on every server of rd in parallel and returns as soon as
// the outcome is decided. With rd.FailFast, that is at once when a quorum
// answered OK or can no longer answer OK. Otherwise a failure returns when
// every server answered or the deadline rd.Timeout passed, so that the
// result names each server, and a success at the quorum, or with
// rd.Linger once every server answered or a short while after the quorum
// (see lingerFor). It also returns when ctx ends, with CtxErr set.
//
// A server that misses the deadline counts as NoReply, but its request is
// not cut off: it runs on a context detached from ctx and bounded by
// rd.Expiry, counted in rd.Inflight, so that a late reply still reaches
// the Op on the connection the request went out on.
//
// skip, when not nil, may spare a backlogged server (see NodeState) the
// request: when it returns true the request is not sent and counts as
// NotSent. It is called only for backlogged servers, on the caller's
// goroutine. (It is a parameter and not a field of Round so that a
// closure given as skip may stay on the caller's stack: rd's Op escapes.)
//
// Run must not be called with a Round whose Pools and States differ in
// length, nor with a nil Inflight.
func (e *Engine) Run(ctx context.Context, rd Round, skip func(node int) bool) Result {
	r := e.newRoundState(&rd)
	r.ctx = e.bounds.Context(ctx, rd.Expiry)
	e.fanOut(r, &rd, skip)
	ctxErr := r.collect(ctx, &rd)
	if r.watch != nil {
		r.decide()
	}
	return Result{N: r.n, CtxErr: ctxErr, state: r}
}

// fanOut sends rd's request to every server, or counts it NotSent.
func (e *Engine) fanOut(r *roundState, rd *Round, skip func(node int) bool) {
	c := e.cfg.Clock
	for node, pool := range rd.Pools {
		state := rd.States[node]
		if skip != nil && state.Backlogged(c, rd.Timeout) && skip(node) {
			if r.watch != nil {
				r.handed(node)
			}
			r.replies <- Reply{Node: node, Outcome: NotSent}
			r.release()
			continue
		}
		state.Sent(c)
		rd.Inflight.Add()
		e.workers.run(task{round: r, node: node, pool: pool, state: state})
	}
}

// roundState is what the goroutines of one round share.
type roundState struct {
	eng      *Engine
	op       Op
	ctx      context.Context // detached from the caller, bounded by the expiry
	replies  chan Reply      // buffered: a goroutine never blocks on it
	inflight *Inflight
	start    time.Time
	// refs counts the users of the roundState, the round itself and each
	// server's goroutine (atomic); the last one recycles it.
	refs int32

	// Used by the round's goroutine only:
	deadline clock.Timer // kept with the roundState; stopped between rounds
	n        int         // OK replies counted
	answered Set         // servers whose reply was counted
	counted  int         // answered's size
	failed   []Reply     // see Result.Failed

	watchState
}

// newRoundState returns a roundState for rd, recycled when one fits.
func (e *Engine) newRoundState(rd *Round) *roundState {
	nodes := len(rd.Pools)
	r, _ := e.states.Get().(*roundState)
	if r == nil || cap(r.replies) != nodes {
		r = &roundState{eng: e, replies: make(chan Reply, nodes), failed: make([]Reply, 0, nodes)}
	}
	r.op, r.inflight = rd.Op, rd.Inflight
	r.refs = int32(nodes + 1)
	r.start = e.cfg.Clock.Now()
	if rd.Watch != nil {
		r.watchState.reset(rd.Watch, nodes)
	}
	return r
}

// release drops a reference to r, and recycles r when it was the last.
func (r *roundState) release() {
	if atomic.AddInt32(&r.refs, -1) != 0 {
		return
	}
	for len(r.replies) > 0 {
		<-r.replies // replies nobody waited for
	}
	clear(r.failed)
	r.failed = r.failed[:0]
	r.answered.Clear()
	r.n, r.counted = 0, 0
	r.op, r.ctx, r.inflight, r.watch = nil, nil, nil, nil
	r.eng.states.Put(r)
}

// serve runs the operation on one server and hands its reply to the round.
func (r *roundState) serve(node int, pool redis.Pool, state *NodeState) {
	inflight := r.inflight
	defer inflight.Done()
	ok, err := r.run(node, pool)
	state.Replied(r.eng.cfg.Clock)
	r.replies <- Reply{Node: node, Outcome: outcomeOf(ok, err), Err: err}
	r.release()
}

// run runs the operation. A panic fails it through the Engine's PanicError,
// whether the operation recovered it itself (IsPanic) or not: even after
// a reply that said ok.
func (r *roundState) run(node int, pool redis.Pool) (ok bool, err error) {
	cfg := &r.eng.cfg
	defer func() {
		if cfg.PanicError == nil {
			return
		}
		if v := recover(); v != nil {
			ok, err = false, cfg.PanicError(v, debug.Stack())
		}
	}()
	ok, err = r.op(r.ctx, node, pool)
	if r.watch != nil {
		r.handOrLate(node, ok, err)
	}
	if ok && err != nil && cfg.IsPanic != nil && cfg.IsPanic(err) {
		ok = false
	}
	return ok, err
}

// collect counts the replies until the round is decided, and returns
// ctx.Err() when ctx ended first.
func (r *roundState) collect(ctx context.Context, rd *Round) error {
	deadline := r.armDeadline(rd.Timeout)
	defer r.disarmDeadline()
	nodes := len(rd.Pools)
	// lingering: a quorum agreed, and the deadline timer now bounds the
	// wait for the other servers.
	lingering := false
	for r.counted < nodes {
		select {
		case reply := <-r.replies:
			r.count(reply)
			if rd.FailFast && (r.n >= rd.Quorum || r.counted-r.n > nodes-rd.Quorum) {
				return nil
			}
			if r.n >= rd.Quorum && !lingering && r.counted < nodes {
				if !rd.Linger || !deadline.Stop() {
					return nil // at the quorum, or the deadline passed meanwhile
				}
				lingering = true
				deadline.Reset(lingerFor(r.eng.cfg.Clock.Now().Sub(r.start), rd.Timeout))
			}
		case <-deadline.C():
			if !lingering {
				r.noReply(nodes, rd.Timeout)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// armDeadline arms the round's deadline timer to fire after timeout.
func (r *roundState) armDeadline(timeout time.Duration) clock.Timer {
	if r.deadline == nil {
		r.deadline = r.eng.cfg.Clock.NewTimer(timeout)
	} else {
		r.deadline.Reset(timeout)
	}
	return r.deadline
}

// disarmDeadline stops the deadline timer and drains it for the next round.
func (r *roundState) disarmDeadline() {
	if !r.deadline.Stop() {
		select {
		case <-r.deadline.C():
		default:
		}
	}
}

// count counts a reply.
func (r *roundState) count(reply Reply) {
	r.answered.Add(reply.Node)
	r.counted++
	if reply.Outcome == OK {
		r.n++
	} else {
		r.failed = append(r.failed, reply)
	}
	if r.watch != nil {
		r.watchCounted(reply)
	}
}

// noReply records the servers that did not answer within timeout.
func (r *roundState) noReply(nodes int, timeout time.Duration) {
	err := errNoReply(timeout)
	for node := 0; node < nodes; node++ {
		if !r.answered.Has(node) {
			r.failed = append(r.failed, Reply{Node: node, Outcome: NoReply, Err: err})
		}
	}
	if r.watch == nil {
		return
	}
	for node := 0; node < nodes; node++ {
		if !r.answered.Has(node) {
			r.watch.NoReply(node, err, timeout)
		}
	}
}
