package redsync

import (
	"context"
	"errors"

	"github.com/quorumlock/redsync/internal/quorum"
)

// A nodeOp is one operation on one server. ok reports that the server did
// what was asked; !ok with a nil error means it refused (the key holds
// another value); an error means the server could not be reached or failed.
type nodeOp = quorum.Op

// roundResult is what one round over all servers decided.
type roundResult struct {
	// n is the number of servers that answered ok before the round returned.
	n int
	// err describes the servers that did not, with redsync's error types.
	err error
	// ctxErr is the caller's ctx.Err() when the round returned because the
	// caller's context ended before the outcome was decided.
	ctxErr error
}

// round runs an acquiring op on every server in parallel (see quorum.Run)
// and returns as soon as the outcome is decided. With WithFailFast, that
// is at once when a quorum answered ok or can no longer answer ok.
// Otherwise a failure returns when every server answered or the per-server
// deadline passed, so that the error names each server, and a success once
// every server answered or a short while after the quorum: on healthy
// servers a Lock then returns with its key on every server, as redsync's
// does (a Lock that returned with its key still on its way to one server
// could lose that server to a contender's try; see reassert for when it
// does). It also returns when ctx ends. Rounds that acquire nothing use
// roundAtQuorum.
//
// A server that misses the deadline counts as failed, but its request is
// not cut off: a late reply still reaches op (which may undo what the
// server did) on the connection the request went out on, counted in
// m.nodes.inflight.
//
// w, when not nil, reports every reply to the Mutex's Observer: those the
// round counts as it counts them, the others as late (see roundWatch).
//
// skip, when not nil, may spare a server that is backlogged (see
// nodeState) the request: when it returns true, the request is not sent
// and the server counts as failed with ErrBacklogged. It is called only
// for such servers, and does the bookkeeping of a request not sent.
func (m *Mutex) round(ctx context.Context, op nodeOp, w *roundWatch, skip func(node int) bool) roundResult {
	return m.runRound(ctx, op, w, skip, true)
}

// roundAtQuorum is round for what acquires nothing (Unlock, Extend,
// Valid): a success returns at the quorum, without waiting for the other
// servers.
func (m *Mutex) roundAtQuorum(ctx context.Context, op nodeOp, w *roundWatch, skip func(node int) bool) roundResult {
	return m.runRound(ctx, op, w, skip, false)
}

// runRound runs op on every server through the Redsync's engine; linger
// waits a little for the other servers after a quorum.
func (m *Mutex) runRound(ctx context.Context, op nodeOp, w *roundWatch, skip func(node int) bool, linger bool) roundResult {
	rd := quorum.Round{
		Op:       op,
		Pools:    m.nodes.pools,
		States:   m.nodes.states,
		Inflight: &m.nodes.inflight.Inflight,
		Quorum:   m.nodes.quorum,
		Timeout:  m.opTimeout(),
		Expiry:   m.cfg.expiry,
		FailFast: m.cfg.failFast,
		Linger:   linger && !m.cfg.failFast,
	}
	if w != nil {
		rd.Watch = w
	}
	res := m.rs.engine.Run(ctx, rd, skip)
	out := resultOf(res, m.nodes.quorum)
	res.Release()
	return out
}

// resultOf turns what the engine decided into redsync's errors: a
// *RedisError per server that failed or did not answer,
// ErrLockAlreadyExpired, an *ErrNodeTaken per server that refused, joined
// in the order the round counted them, or an *ErrTaken when a quorum
// refused.
func resultOf(res quorum.Result, quorum int) roundResult {
	var (
		err   error
		taken []int
	)
	for _, r := range res.Failed() {
		err = errors.Join(err, nodeError(r, &taken))
	}
	if len(taken) >= quorum {
		err = &ErrTaken{Nodes: taken}
	}
	return roundResult{n: res.N, err: err, ctxErr: res.CtxErr}
}

// nodeError is redsync's error for one server's reply that was not ok; a
// refusal adds the server to *taken.
func nodeError(r quorum.Reply, taken *[]int) error {
	switch {
	case r.Outcome == quorum.Refused:
		*taken = append(*taken, r.Node)
		return &ErrNodeTaken{Node: r.Node}
	case r.Outcome == quorum.NotSent:
		return &RedisError{Node: r.Node, Err: ErrBacklogged}
	case r.Err == ErrLockAlreadyExpired:
		return ErrLockAlreadyExpired
	default: // Failed, NoReply
		return &RedisError{Node: r.Node, Err: r.Err}
	}
}

// skipAlways is the skip of a round whose requests a backlogged server
// may always be spared (see round).
func skipAlways(int) bool { return true }

// newEngine returns the quorum engine of a Redsync: the panics of its
// operations are recovered into *PanicError.
func newEngine() *quorum.Engine {
	return quorum.NewEngine(quorum.Config{PanicError: panicError, IsPanic: isPanic})
}

// panicError is the *PanicError of a panic with value v and stack.
func panicError(v any, stack []byte) error {
	return &PanicError{Value: v, Stack: stack}
}

// isPanic reports whether err is or wraps a *PanicError. It is not
// inlined, so that a round allocates nothing for it: errors.As moves its
// target to the heap.
//
//go:noinline
func isPanic(err error) bool {
	var panicked *PanicError
	return errors.As(err, &panicked)
}
