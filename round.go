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
// bounded by the expiry (see boundedContext), in goroutines counted in m.inflight, so that a
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
	r := newRoundState(op, len(m.pools), m.inflight)
	r.ctx = m.rs.boundedContext(ctx, m.expiry)
	for node, pool := range m.pools {
		state := m.states[node]
		if skip != nil && state.backlogged(timeout) && skip(node) {
			if w != nil {
				w.notSent(node)
			}
			r.replies <- nodeReply{node: node, err: ErrBacklogged}
			r.release()
			continue
		}
		state.sent()
		m.inflight.add()
		m.rs.workers.run(task{round: r, node: node, pool: pool, state: state})
	}

	deadline := getTimer(timeout)
	defer putTimer(deadline)
	t := tally{quorum: m.quorum, nodes: len(m.pools)}
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
			if m.failFast && (t.n >= m.quorum || t.failed()) {
				break collect
			}
			if t.n >= m.quorum && !lingering && t.answered < t.nodes {
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

// nodeState tells whether a server is backlogged: many requests sent to it
// (backlogMin or more) and not one reply for longer than the per-server
// deadline. A stopped server, say, answers nothing while the connections
// to it stay open: every request sent to it waits, on a goroutine, until
// its context ends (bounded by the expiry), and under load they would pile
// up by the thousand. Rounds spare a backlogged server the requests that
// are not needed (see round's skip): an acquire or extension not sent
// cannot set anything there. Once the server answers again, requests go
// out as before.
type nodeState struct {
	pending int64 // atomic: requests sent and not returned
	// since is when the server last answered, or when pending last rose
	// from zero (atomic, see monoNow).
	since int64
}

// monoBase is the origin of monoNow.
var monoBase = time.Now()

// monoNow is the time on the monotonic clock, in nanoseconds since
// monoBase: a step of the wall clock does not make a server look silent.
func monoNow() int64 {
	return int64(time.Since(monoBase))
}

// backlogMin is the number of requests waiting for a server from which it
// may count as backlogged: fewer cost little while they wait, and a
// stalled server under load collects that many within milliseconds.
const backlogMin = 64

func (s *nodeState) sent() {
	if atomic.AddInt64(&s.pending, 1) == 1 {
		atomic.StoreInt64(&s.since, monoNow())
	}
}

func (s *nodeState) replied() {
	atomic.StoreInt64(&s.since, monoNow())
	atomic.AddInt64(&s.pending, -1)
}

// backlogged reports whether the server has backlogMin requests or more
// waiting and has not answered for longer than timeout.
func (s *nodeState) backlogged(timeout time.Duration) bool {
	if atomic.LoadInt64(&s.pending) < backlogMin {
		return false
	}
	return time.Duration(monoNow()-atomic.LoadInt64(&s.since)) > timeout
}

// workers runs tasks on goroutines that outlive one task: a client call
// grows a fresh goroutine's stack several times, which costs more than the
// call itself on a fast network. An idle worker exits after workerIdle, or
// when Redsync.Wait asks.
type workers struct {
	tasks chan task // unbuffered: a send succeeds only when a worker is idle

	mu      sync.Mutex    // guards quit
	quit    chan struct{} // closed to make the idle workers exit
	running inflightCount // the worker goroutines
}

// workerIdle is how long a worker waits for another task before it exits.
const workerIdle = 100 * time.Millisecond

// run hands t to an idle worker, or starts one.
func (w *workers) run(t task) {
	select {
	case w.tasks <- t:
	default:
		w.running.add()
		go w.work(t)
	}
}

func (w *workers) work(t task) {
	defer w.running.done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.round.serve(t.node, t.pool, t.state)
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(workerIdle)
		select {
		case t = <-w.tasks:
		case <-idle.C:
			return
		case <-w.quitting():
			return
		}
	}
}

func (w *workers) quitting() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.quit == nil {
		w.quit = make(chan struct{})
	}
	return w.quit
}

// stopIdle makes the idle workers exit and waits until no worker runs.
// Workers started meanwhile are waited for too.
func (w *workers) stopIdle() {
	w.mu.Lock()
	if w.quit != nil {
		close(w.quit)
	}
	w.quit = make(chan struct{})
	w.mu.Unlock()
	w.running.wait()
}

// timers recycles the per-server deadline timers of rounds.
var timers sync.Pool

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// putTimer stops t, drains it and recycles it.
func putTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	timers.Put(t)
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

// sharedBound is a context bounded by a deadline that the rounds of one
// Redsync's Mutexes with the same expiry share while they start before
// renewAt.
type sharedBound struct {
	ctx     context.Context
	expiry  time.Duration
	renewAt time.Time
	// cancel is never called: rounds may still use ctx when the next
	// sharedBound replaces it, and its timer frees it at the deadline.
	cancel context.CancelFunc
}

// boundShare is the share of the expiry a sharedBound is used for: a round
// that starts then is bounded by between (1 - boundShare) × expiry and the
// expiry.
const boundShare = 10

// boundedContext returns the context of a round of operations for a caller
// with ctx: ctx's values, none of its cancellation, and a deadline at most
// expiry and at least nine tenths of it from now. The deadline is shared
// with the other rounds of r that start within the same tenth of the
// expiry: one context and timer per tenth of the expiry instead of one per
// round, and nothing for the round to cancel.
func (r *Redsync) boundedContext(ctx context.Context, expiry time.Duration) context.Context {
	now := time.Now()
	b := r.bound.Load()
	if b == nil || b.expiry != expiry || !now.Before(b.renewAt) {
		shared, cancel := context.WithDeadline(context.Background(), now.Add(expiry))
		b = &sharedBound{ctx: shared, expiry: expiry, renewAt: now.Add(expiry / boundShare), cancel: cancel}
		r.bound.Store(b)
	}
	if ctx == context.Background() {
		return b.ctx // no values to carry
	}
	return detachedContext{bound: b.ctx, caller: ctx}
}

// detachedContext carries the values of the caller's context, and the
// deadline and cancellation of bound instead of the caller's: work started
// for a caller outlives the caller's cancellation (context.WithoutCancel
// needs Go 1.21).
type detachedContext struct {
	bound  context.Context
	caller context.Context
}

// detach returns a context with ctx's values that never ends.
func detach(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return detachedContext{bound: context.Background(), caller: ctx}
}

func (d detachedContext) Deadline() (time.Time, bool) { return d.bound.Deadline() }
func (d detachedContext) Done() <-chan struct{}       { return d.bound.Done() }
func (d detachedContext) Err() error                  { return d.bound.Err() }

// Value asks bound first: the context package finds its own cancellation
// there, so a context derived from d (by a client, say) is cancelled with
// bound without a goroutine of its own and never with the caller's
// context. bound carries no values of its own.
func (d detachedContext) Value(key any) any {
	if v := d.bound.Value(key); v != nil {
		return v
	}
	return d.caller.Value(key)
}

// holding tracks the servers that may hold one try's value, so that each of
// them is released exactly once when the try fails or the lock is
// unlocked, even when its acquire reply arrives after Lock returned.
type holding struct {
	value string
	// external: the value was acquired elsewhere (WithValue), so any
	// server may hold it.
	external bool

	mu      sync.Mutex // guards the fields below, up to freeAfter
	givenUp bool
	nodes   []int  // servers whose acquire succeeded or failed with an error
	few     [8]int // backs nodes for up to 8 servers, saving allocations
	// givenUpNodes has bit i set once server i is given up alone (see
	// giveUpNode).
	givenUpNodes uint64
	// pending has bit i set while the acquire reply of server i is not in
	// (first 64 servers); replied, once made, is closed at the next reply.
	pending uint64
	replied chan struct{}

	// refused are the servers that refused the attempt (see reassert).
	refused refusals

	// freeAfter backs the acquire's per-server free times (see attempt)
	// for up to 8 servers; written atomically by the node goroutines.
	freeAfter [8]int64
}

// newHolding returns the hold of value, which no request is acquiring
// (WithValue), or, when acquiring is the number of servers an attempt is
// sending its acquire to, of an attempt's value.
func newHolding(value string, acquiring int) *holding {
	h := &holding{value: value, external: acquiring == 0}
	h.nodes = h.few[:0]
	if acquiring > 64 {
		acquiring = 64 // the others are not waited for (see awaitReply)
	}
	// (1<<64 is 0 in a uint64, so 64 servers set all 64 bits.)
	h.pending = 1<<uint(acquiring) - 1
	return h
}

// record notes that node may hold the value. It returns false when the hold
// was already given up: the caller must release node itself.
func (h *holding) record(node int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.givenUp || (node < 64 && h.givenUpNodes&(1<<uint(node)) != 0) {
		return false
	}
	if !h.recordedLocked(node) {
		h.nodes = append(h.nodes, node)
	}
	return true
}

// recordedLocked reports whether node was recorded; h.mu is held.
func (h *holding) recordedLocked(node int) bool {
	for _, n := range h.nodes {
		if n == node {
			return true
		}
	}
	return false
}

// mayHold reports whether node may hold the value: it was acquired
// elsewhere, or node's acquire is on its way or did not refuse.
func (h *holding) mayHold(node int) bool {
	if h.external || node >= 64 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending&(1<<uint(node)) != 0 || h.recordedLocked(node)
}

// acquireReplied notes that the acquire reply of node is in (and was
// recorded if it had to be).
func (h *holding) acquireReplied(node int) {
	if node >= 64 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending &^= 1 << uint(node)
	if h.replied != nil {
		close(h.replied) // the waiters look again
		h.replied = nil
	}
}

// awaitReply waits until the acquire reply of node is in, or ctx ends: a
// release sent after it cannot be overtaken by the acquire. Servers beyond
// the first 64 are not waited for.
func (h *holding) awaitReply(ctx context.Context, node int) {
	if node >= 64 {
		return
	}
	for {
		h.mu.Lock()
		if h.pending&(1<<uint(node)) == 0 {
			h.mu.Unlock()
			return
		}
		if h.replied == nil {
			h.replied = make(chan struct{})
		}
		replied := h.replied
		h.mu.Unlock()
		select {
		case <-replied:
		case <-ctx.Done():
			return
		}
	}
}

// giveUpNode gives up node alone: a request that sets the value there from
// now on (a late acquire, an extension that sets a missing key) releases
// it itself. It returns false for servers beyond the first 64, which only
// giveUp gives up.
func (h *holding) giveUpNode(node int) bool {
	if node >= 64 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.givenUpNodes |= 1 << uint(node)
	return true
}

// givenUpFor reports whether node was given up, alone or with the hold.
func (h *holding) givenUpFor(node int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.givenUp || (node < 64 && h.givenUpNodes&(1<<uint(node)) != 0)
}

// giveUp marks the hold as given up and returns the servers recorded so far;
// servers whose replies come later are released by their own goroutine.
func (h *holding) giveUp() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.givenUp = true
	nodes := h.nodes
	h.nodes = nil
	return nodes
}

// inflightCount counts the goroutines talking to servers for a Redsync.
// Unlike a sync.WaitGroup, it may go up from zero while somebody waits.
type inflightCount struct {
	n int64 // atomic: the goroutines running

	mu   sync.Mutex // guards the wake-ups of idle
	idle *sync.Cond // broadcast when n drops to zero
}

func (c *inflightCount) add() {
	atomic.AddInt64(&c.n, 1)
}

func (c *inflightCount) done() {
	if atomic.AddInt64(&c.n, -1) == 0 {
		c.mu.Lock()
		if c.idle != nil {
			c.idle.Broadcast()
		}
		c.mu.Unlock()
	}
}

// wait blocks until no goroutine is running.
func (c *inflightCount) wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = sync.NewCond(&c.mu)
	}
	for atomic.LoadInt64(&c.n) > 0 {
		c.idle.Wait()
	}
}
