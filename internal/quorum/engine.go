// Package quorum runs one request on N servers in parallel and decides at
// a quorum, at a per-server deadline or when the caller's context ends.
// It knows nothing of what the request does: an Op reports ok, refused or
// an error per server, and a Result gives the count of ok replies and the
// other servers' outcomes, for the caller to turn into its own errors.
//
// Requests are never cut off: they run on workers, on a context detached
// from the caller's and bounded by an expiry (see Bounds), so that a reply
// after the round returned still reaches the Op (which may undo what the
// server did). Servers that stop answering under load are spared requests
// the caller can do without (see NodeState). Deadlines, the wait after a
// quorum and the backlog are timed by an injectable clock.
package quorum

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quorumlock/redsync/internal/clock"
	"github.com/quorumlock/redsync/redis"
)

// An Op is one request to one server. ok reports that the server did what
// was asked; !ok with a nil error means it refused; an error means the
// server could not be reached or failed. It runs on a worker goroutine,
// concurrently with the Ops of the other servers, and may run after the
// round returned.
type Op func(ctx context.Context, node int, pool redis.Pool) (ok bool, err error)

// Outcome is what became of one server's request in a round.
type Outcome uint8

const (
	// OK: the server did what was asked.
	OK Outcome = iota
	// Refused: the server answered no, without an error.
	Refused
	// Failed: the request failed with an error.
	Failed
	// NoReply: no reply within the per-server deadline.
	NoReply
	// NotSent: the request was not sent (a backlogged server, see Skip).
	NotSent
)

// Reply is the outcome of one server's request.
type Reply struct {
	Node    int
	Outcome Outcome
	// Err is the Op's error (Failed, or OK with an error), or the
	// deadline's (NoReply); nil otherwise.
	Err error
}

// outcomeOf classifies an Op's return values.
func outcomeOf(ok bool, err error) Outcome {
	switch {
	case ok:
		return OK
	case err != nil:
		return Failed
	default:
		return Refused
	}
}

// Config is what an Engine is made with.
type Config struct {
	// Clock times the deadlines, the wait after a quorum and the
	// backlog; nil is clock.Real.
	Clock clock.Clock
	// PanicError turns a panic of an Op (or of a Watcher's Late), value
	// v recovered with the stack, into the Op's error; nil leaves panics
	// alone (they crash the process).
	PanicError func(v any, stack []byte) error
	// IsPanic reports whether an error came from PanicError (or from an
	// Op that recovered a panic itself): such a reply never counts as OK.
	// nil: none does.
	IsPanic func(err error) bool
}

// Engine runs rounds for one set of servers: it owns the worker
// goroutines, the shared bounded contexts, and recycled round state. Its
// methods are safe for concurrent use.
type Engine struct {
	cfg     Config
	workers workers
	bounds  Bounds
	states  sync.Pool // *roundState, with their reply channels
}

// NewEngine returns an Engine made with cfg.
func NewEngine(cfg Config) *Engine {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	return &Engine{cfg: cfg, workers: workers{tasks: make(chan task)}}
}

// Clock returns the Engine's clock.
func (e *Engine) Clock() clock.Clock { return e.cfg.Clock }

// Bounded returns a context for requests on behalf of ctx, detached from
// its cancellation and bounded by expiry (see Bounds.Context).
func (e *Engine) Bounded(ctx context.Context, expiry time.Duration) context.Context {
	return e.bounds.Context(ctx, expiry)
}

// StopIdle makes the idle workers exit and waits until no worker runs;
// workers started meanwhile are waited for too. Rounds may run
// concurrently, and start workers anew.
func (e *Engine) StopIdle() { e.workers.stopIdle() }

// Round is one request to run on every server.
type Round struct {
	Op Op
	// Pools are the servers, States their backlogs (one per pool).
	Pools  []redis.Pool
	States []*NodeState
	// Inflight counts each request from when it is sent until its Op
	// returned; it must not be nil.
	Inflight *Inflight
	// Quorum is the number of OK replies that decide a success.
	Quorum int
	// Timeout is the per-server deadline; Expiry bounds the requests'
	// context (see Bounds).
	Timeout, Expiry time.Duration
	// FailFast: return at once when a quorum answered OK or can no
	// longer answer OK.
	FailFast bool
	// Linger: once a quorum answered OK, wait a little for the other
	// servers (see lingerFor) rather than return at once.
	Linger bool
	// Watch, when not nil, sees every reply (see Watcher).
	Watch Watcher
}

// A Watcher sees the replies of a round. Reply, NotSent and NoReply are
// called on the goroutine that called Run, before Run returns, in the
// order the round counts them; Late is called for each reply the round
// did not count, after it was decided, from any goroutine and
// concurrently with the others.
type Watcher interface {
	// Reply reports a reply the round counts; latency is since the round
	// started.
	Reply(r Reply, latency time.Duration)
	// NotSent reports a request not sent (see Round.Skip).
	NotSent(node int)
	// NoReply reports a server that did not answer within timeout; err
	// is the error it is recorded with.
	NoReply(node int, err error, timeout time.Duration)
	// Late reports a reply that came after the round was decided.
	Late(r Reply, latency time.Duration)
}

// Result is what a round decided. Release it once read.
type Result struct {
	// N is the number of OK replies the round counted.
	N int
	// CtxErr is the caller's ctx.Err() when the round returned because
	// the caller's context ended before the outcome was decided.
	CtxErr error
	state  *roundState
}

// Failed returns the outcomes of the servers that did not answer OK by
// the time the round returned: the replies counted, in the order the round
// counted them, then the servers without a reply at the deadline, in
// server order. It must not be called after Release, nor kept past it.
func (r Result) Failed() []Reply { return r.state.failed }

// Release gives the round's state back for reuse; the Result must not be
// used after.
func (r Result) Release() { r.state.release() }

// errNoReply is the error of the servers that missed a deadline.
func errNoReply(timeout time.Duration) error {
	return fmt.Errorf("no reply within %v: %w", timeout, context.DeadlineExceeded)
}

// lingerFor is how long a round waits for the other servers once a quorum
// agreed, elapsed after it started: as long again, at least minLinger and
// at most an eighth of the per-server deadline. On healthy servers, whose
// replies come close together, the round then returns with every server
// done, while a stalled server costs about the quorum's own time again:
// little, unless the quorum itself was slow.
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
