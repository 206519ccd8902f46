package redsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// A nodeOp is one operation on one server. ok reports that the server did
// what was asked; !ok with a nil error means it refused (the key holds
// another value); an error means the server could not be reached or failed.
type nodeOp func(ctx context.Context, node int, pool redis.Pool) (ok bool, err error)

type nodeReply struct {
	node int
	ok   bool
	err  error
}

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

// round runs op on every server in parallel and returns as soon as the
// outcome is decided. With WithFailFast, that is at once when a quorum
// answered ok or can no longer answer ok. Otherwise a failure returns when
// every server answered or the per-server deadline passed, so that the
// error names each server, and a success once every server answered or a
// short while after the quorum (see lingerFor). It also returns when ctx
// ends.
//
// A server that misses the deadline counts as failed, but its request is
// not cut off: the operations run on a context detached from ctx and
// bounded by the expiry (see boundedContext), in goroutines counted in m.nodes.inflight, so that a
// late reply still reaches op (which may undo what the server did) on the
// connection the request went out on. Cutting the connection instead would
// leave the request queued on a stalled server, to run whenever it resumes
// and after anything sent to clean up.
//
// w, when not nil, reports every reply to the Mutex's Observer: those the
// round counts as it counts them, the others as late (see roundWatch).
//
// skip, when not nil, may spare a server that is backlogged (see
// nodeState) the request: when it returns true, the request is not sent
// and the server counts as failed with ErrBacklogged. It is called only
// for such servers, and does the bookkeeping of a request not sent.
func (m *Mutex) round(ctx context.Context, op nodeOp, w *roundWatch, skip func(node int) bool) roundResult {
	if w != nil {
		op = w.wrap(op)
	}
	timeout := m.opTimeout()
	start := time.Now()
	r := newRoundState(op, len(m.nodes.pools), m.nodes.inflight)
	r.ctx = m.rs.boundedContext(ctx, m.cfg.expiry)
	for node, pool := range m.nodes.pools {
		state := m.nodes.states[node]
		if skip != nil && state.backlogged(timeout) && skip(node) {
			if w != nil {
				w.notSent(node)
			}
			r.replies <- nodeReply{node: node, err: ErrBacklogged}
			r.release()
			continue
		}
		state.sent()
		m.nodes.inflight.add()
		m.rs.workers.run(task{round: r, node: node, pool: pool, state: state})
	}

	deadline := getTimer(timeout)
	defer putTimer(deadline)
	t := tally{quorum: m.nodes.quorum, nodes: len(m.nodes.pools)}
	var (
		ctxErr error
		// lingering: a quorum agreed, and the deadline timer now bounds
		// the wait for the other servers (see lingerFor).
		lingering bool
	)
collect:
	for t.answered < t.nodes {
		select {
		case reply := <-r.replies:
			t.add(reply)
			if w != nil {
				w.reply(reply)
			}
			if m.cfg.failFast && (t.n >= m.nodes.quorum || t.failed()) {
				break collect
			}
			if t.n >= m.nodes.quorum && !lingering && t.answered < t.nodes {
				lingering = true
				if !deadline.Stop() {
					// The deadline passed meanwhile: no wait.
					break collect
				}
				deadline.Reset(lingerFor(time.Since(start), timeout))
			}
		case <-deadline.C:
			if lingering {
				break collect
			}
			errNoReply := t.noReply(timeout)
			if w != nil {
				w.noReply(&t, errNoReply, timeout)
			}
			break collect
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break collect
		}
	}
	if w != nil {
		w.decide(r.replies)
	}
	r.release()
	return t.result(ctxErr)
}

// lingerFor is how long a round waits for the other servers once a quorum
// agreed, elapsed after it started: as long again, at least minLinger and
// at most an eighth of the per-server deadline timeout (50 ms by default).
// On healthy servers, whose replies come close together, an operation
// then returns with every server done, as redsync's does (a Lock that
// returned with its key still on its way to one server could lose that
// server to a contender's try; see reassert for when it does), while a
// stalled server costs about the quorum's own time again: little, unless
// the quorum itself was slow.
func lingerFor(elapsed, timeout time.Duration) time.Duration {
	d := elapsed
	if d < minLinger {
		d = minLinger
	}
	if max := timeout / 8; d > max {
		d = max
	}
	return d
}

// minLinger is the shortest wait for the other servers after a quorum: a
// reply a few scheduling delays behind the quorum's still counts.
const minLinger = 100 * time.Microsecond

// skipAlways is the skip of a round whose requests a backlogged server
// may always be spared (see round).
func skipAlways(int) bool { return true }

// roundState is what the goroutines of one round share.
type roundState struct {
	op       nodeOp
	ctx      context.Context // detached from the caller, bounded by the expiry
	replies  chan nodeReply  // buffered: a goroutine never blocks on it
	inflight *inflightCount
	// refs counts the users of the roundState, the round itself and each
	// server's goroutine (atomic); the last one recycles it.
	refs int32
}

// roundStates recycles roundStates, with their reply channels.
var roundStates sync.Pool

// newRoundState returns a roundState for op on nodes servers.
func newRoundState(op nodeOp, nodes int, inflight *inflightCount) *roundState {
	r, _ := roundStates.Get().(*roundState)
	if r == nil || cap(r.replies) != nodes {
		r = &roundState{replies: make(chan nodeReply, nodes)}
	}
	r.op, r.inflight = op, inflight
	r.refs = int32(nodes + 1)
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
	r.op, r.ctx, r.inflight = nil, nil, nil
	roundStates.Put(r)
}

// serve runs the operation on one server and reports the reply.
func (r *roundState) serve(node int, pool redis.Pool, state *nodeState) {
	inflight := r.inflight
	defer inflight.done()
	ok, err := r.run(node, pool)
	state.replied()
	r.replies <- nodeReply{node: node, ok: ok, err: err}
	r.release()
}

// run runs the operation. A panic fails it with a *PanicError, whether
// the operation recovered it from a Pool call (after its bookkeeping) or
// not (a Pool call it did not guard itself, or an Observer): even after a
// reply that said ok, such as a connection's Close that panicked.
func (r *roundState) run(node int, pool redis.Pool) (ok bool, err error) {
	defer recoverPanic(&err)
	ok, err = r.op(r.ctx, node, pool)
	if ok && err != nil && isPanic(err) {
		ok = false
	}
	return ok, err
}

// isPanic reports whether err is or wraps a *PanicError. It is not
// inlined, so that run allocates nothing for it: errors.As moves its
// target to the heap.
//
//go:noinline
func isPanic(err error) bool {
	var panicked *PanicError
	return errors.As(err, &panicked)
}

// A task is one server's part of a round.
type task struct {
	round *roundState
	node  int
	pool  redis.Pool
	state *nodeState
}

// tally sums up the replies of one round the way redsync v4 reports them.
type tally struct {
	quorum, nodes int
	answered      int
	n             int
	seen          uint64 // bit i: node i answered (first 64 nodes)
	taken         []int
	err           error
}

func (t *tally) add(r nodeReply) {
	t.answered++
	if r.node < 64 {
		t.seen |= 1 << uint(r.node)
	}
	switch {
	case r.ok:
		t.n++
	case r.err == ErrLockAlreadyExpired:
		t.err = errors.Join(t.err, ErrLockAlreadyExpired)
	case r.err != nil:
		t.err = errors.Join(t.err, &RedisError{Node: r.node, Err: r.err})
	default:
		t.taken = append(t.taken, r.node)
		t.err = errors.Join(t.err, &ErrNodeTaken{Node: r.node})
	}
}

// failed reports whether a quorum can no longer answer ok.
func (t *tally) failed() bool {
	return t.answered-t.n > t.nodes-t.quorum
}

// noReply records the servers that did not answer within timeout, and
// returns the error they are recorded with.
func (t *tally) noReply(timeout time.Duration) error {
	errNoReply := fmt.Errorf("no reply within %v: %w", timeout, context.DeadlineExceeded)
	for node := 0; node < t.nodes; node++ {
		if t.missed(node) {
			t.err = errors.Join(t.err, &RedisError{Node: node, Err: errNoReply})
		}
	}
	return errNoReply
}

// missed reports whether node has not answered (always true beyond the
// first 64 nodes).
func (t *tally) missed(node int) bool {
	return node >= 64 || t.seen&(1<<uint(node)) == 0
}

func (t *tally) result(ctxErr error) roundResult {
	err := t.err
	if len(t.taken) >= t.quorum {
		err = &ErrTaken{Nodes: t.taken}
	}
	return roundResult{n: t.n, err: err, ctxErr: ctxErr}
}
