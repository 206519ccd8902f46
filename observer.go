package redsync

import (
	"context"
	"errors"
	"time"
)

// An Observer is told what the Mutexes it observes do, for metrics,
// tracing or logs: every Lock (TryLock included), Unlock and Extend, each
// attempt to acquire, each server's reply, and the loss of a lock kept
// alive. Set one for all the Mutexes of a Redsync with SetObserver, or for
// one Mutex with WithObserver. The packages under contrib/ implement it for
// Prometheus and OpenTelemetry.
//
// # Order and goroutines
//
// An operation (Lock, Unlock, Extend, or one extension by KeepAlive) calls
// Start once; then, for each round of requests to the servers (one per
// attempt of a Lock, one for the others), Node for each reply the round
// counts, as it arrives, and for each server that missed the deadline,
// followed, for a Lock, by Attempt when the attempt is decided; then Done
// once. These calls are made one at a time, in that order, on the
// goroutine that called the operation (KeepAlive's own goroutine for its
// extensions). A reply that the round did not count, because it came after
// the round was decided, is reported with Late set: by that goroutine when
// it had just arrived, otherwise by the goroutine that received it,
// possibly after Done and concurrently with anything else. Lost is called
// on KeepAlive's goroutine, after the Done of the extension that found the
// lock lost, if any, and before the holder's context is cancelled.
//
// One Observer serves every Mutex that uses it, from many goroutines at
// once: its methods must be safe for concurrent use. They run on the
// lock's own path (Node between the replies of a round, before the round
// is decided) and what they take counts against the lock's validity: they
// must be fast and must not block. They must not call the Mutex.
//
// # Spans
//
// Start returns the context that the rest of the operation uses, and every
// later event of the operation, Late ones included, receives that context.
// A tracing Observer starts a span in Start, returns the context carrying
// it, and finds the span again in Node, Attempt and Done (ending it there),
// so the library keeps no state for observers, and an unobserved Mutex
// pays nothing for them: no allocation, a nil check per event. Because the
// operation talks to the servers with that context, spans of an
// instrumented Redis client nest under the operation's span.
//
// Events are passed by value; the errors in them may be kept.
type Observer interface {
	// Start is called when an operation begins, after its arguments were
	// checked (an *ArgumentError is not observed). It returns ctx, or a
	// context derived from it: the operation runs with the context
	// returned, and ends when it ends. A nil return counts as ctx.
	Start(ctx context.Context, e StartEvent) context.Context
	// Attempt is called when an attempt of a Lock to acquire the lock is
	// decided, acquired or not.
	Attempt(ctx context.Context, e AttemptEvent)
	// Node is called for each server's reply to an operation, and for a
	// server that gave no reply within the per-server deadline.
	Node(ctx context.Context, e NodeEvent)
	// Done is called when an operation returns, with what it returned.
	Done(ctx context.Context, e DoneEvent)
	// Lost is called when KeepAlive finds that the lock can no longer be
	// proven held; the holder's context is cancelled with e.Cause right
	// after. ctx is the context given to KeepAlive, which is not an
	// operation's.
	Lost(ctx context.Context, e LostEvent)
}

// BaseObserver is an Observer that does nothing. Embed it in an Observer
// of your own to implement only the methods you need.
type BaseObserver struct{}

// Start returns ctx.
func (BaseObserver) Start(ctx context.Context, _ StartEvent) context.Context { return ctx }

// Attempt does nothing.
func (BaseObserver) Attempt(context.Context, AttemptEvent) {}

// Node does nothing.
func (BaseObserver) Node(context.Context, NodeEvent) {}

// Done does nothing.
func (BaseObserver) Done(context.Context, DoneEvent) {}

// Lost does nothing.
func (BaseObserver) Lost(context.Context, LostEvent) {}

// MultiObserver returns an Observer that passes every event to each of
// observers in turn, for example metrics to one and traces to another. Its
// Start chains the contexts: each observer's Start gets the context the
// previous one returned. Nil observers are skipped.
func MultiObserver(observers ...Observer) Observer {
	var m multiObserver
	for _, o := range observers {
		if o != nil {
			m = append(m, o)
		}
	}
	return m
}

type multiObserver []Observer

func (m multiObserver) Start(ctx context.Context, e StartEvent) context.Context {
	for _, o := range m {
		if derived := o.Start(ctx, e); derived != nil {
			ctx = derived
		}
	}
	return ctx
}

func (m multiObserver) Attempt(ctx context.Context, e AttemptEvent) {
	for _, o := range m {
		o.Attempt(ctx, e)
	}
}

func (m multiObserver) Node(ctx context.Context, e NodeEvent) {
	for _, o := range m {
		o.Node(ctx, e)
	}
}

func (m multiObserver) Done(ctx context.Context, e DoneEvent) {
	for _, o := range m {
		o.Done(ctx, e)
	}
}

func (m multiObserver) Lost(ctx context.Context, e LostEvent) {
	for _, o := range m {
		o.Lost(ctx, e)
	}
}

// An Op is an operation that an Observer sees.
type Op uint8

const (
	// OpLock is Lock, LockContext, TryLock or TryLockContext.
	OpLock Op = iota + 1
	// OpUnlock is Unlock or UnlockContext.
	OpUnlock
	// OpExtend is Extend or ExtendContext.
	OpExtend
	// OpKeepAlive is one extension made by KeepAlive in the background.
	OpKeepAlive
)

// String returns "lock", "unlock", "extend" or "keepalive", for labels.
func (op Op) String() string {
	switch op {
	case OpLock:
		return "lock"
	case OpUnlock:
		return "unlock"
	case OpExtend:
		return "extend"
	case OpKeepAlive:
		return "keepalive"
	}
	return "unknown"
}

// A NodeOutcome is what one server did with one request.
type NodeOutcome uint8

const (
	// NodeOK: the server did what was asked (set, released or extended
	// the key).
	NodeOK NodeOutcome = iota + 1
	// NodeRefused: the key holds another value (or, for an extension, is
	// missing).
	NodeRefused
	// NodeExpired: an Unlock found the key gone, expired
	// (ErrLockAlreadyExpired).
	NodeExpired
	// NodeError: the server could not be reached, or failed.
	NodeError
	// NodeTimeout: no reply within the per-server deadline. The request
	// stays in flight: its reply, if it comes, is reported again as Late.
	NodeTimeout
	// NodeNotSent: the request was not sent, because the server is
	// backlogged (ErrBacklogged); the event's Latency is zero.
	NodeNotSent
)

// String returns "ok", "refused", "expired", "error", "timeout" or
// "not_sent", for labels.
func (o NodeOutcome) String() string {
	switch o {
	case NodeOK:
		return "ok"
	case NodeRefused:
		return "refused"
	case NodeExpired:
		return "expired"
	case NodeError:
		return "error"
	case NodeTimeout:
		return "timeout"
	case NodeNotSent:
		return "not_sent"
	}
	return "unknown"
}

// StartEvent begins an operation.
type StartEvent struct {
	Op   Op
	Name string // the Mutex's name
	// Tries is, for OpLock, the most tries the call may use (1 for
	// TryLock); 0 for the other operations.
	Tries int
}

// AttemptEvent is one decided attempt of a Lock to acquire the lock: one
// SET on every server, in parallel.
type AttemptEvent struct {
	Name string
	// Attempt counts the attempts of this Lock call, from 1, including
	// those made when woken up within a retry delay (see WithHandoff).
	Attempt int
	// Try is the try the attempt belongs to, as WithTries counts them:
	// the retry delays waited so far, plus one.
	Try int
	// Duration is the time from the attempt's start to its decision.
	Duration time.Duration
	// Agreed is the number of servers that had set the key when the
	// attempt was decided; Quorum the number needed.
	Agreed, Quorum int
	// Acquired reports that the attempt acquired the lock.
	Acquired bool
	// Canceled reports that the caller's context ended first.
	Canceled bool
	// HandedOver reports an attempt that took a hand-over: an Unlock in
	// this process released the lock straight to this Lock call (see
	// WithHandoff). Its requests were the Unlock's: their replies are
	// reported as the Unlock's NodeEvents, none as this attempt's, and
	// Agreed counts the servers that handed the lock over.
	HandedOver bool
	// Err says why the attempt did not acquire the lock: the servers'
	// errors as Lock reports them (*ErrTaken, *RedisError, ... joined),
	// the context's error when Canceled, or ErrFailed when a quorum agreed
	// too late to leave any validity. It is nil when Acquired.
	Err error
}

// Outcome classifies the attempt for a label: "ok" (acquired), "taken",
// "canceled" or "failed". See DoneEvent.Outcome.
func (e AttemptEvent) Outcome() string {
	return outcome(e.Err, e.Canceled)
}

// NodeEvent is one server's reply to one request of an operation, or its
// missing the per-server deadline (NodeTimeout).
type NodeEvent struct {
	Op   Op
	Name string
	// Attempt is, for OpLock, the attempt the request belongs to (see
	// AttemptEvent); 0 for the other operations.
	Attempt int
	// Node is the server's index in the pools given to New (in the
	// shuffled order with WithShufflePools, as in errors).
	Node    int
	Outcome NodeOutcome
	// Err is the error the reply counted as: ErrLockAlreadyExpired for
	// NodeExpired, the client's error for NodeError, an error matching
	// context.DeadlineExceeded for NodeTimeout, ErrBacklogged for
	// NodeNotSent; nil otherwise.
	Err error
	// Latency is the time from the start of the request (the round) to
	// the reply; for NodeTimeout, the deadline.
	Latency time.Duration
	// Late reports a reply that came after the outcome of its attempt (or
	// operation) was decided, which it did not count in: for example the
	// slowest server of a lock acquired on a quorum, or a server that
	// missed the deadline. What a late reply did is undone if unwanted
	// (a late acquire is released).
	Late bool
}

// DoneEvent ends an operation with what it returned.
type DoneEvent struct {
	Op   Op
	Name string
	// Duration is the time the operation took: for OpLock, the wait for
	// the lock.
	Duration time.Duration
	// Err is the error the operation returned: nil when it acquired,
	// released or extended the lock.
	Err error
	// Canceled reports that the caller's context ended before the
	// outcome was decided (Err then matches the context's error).
	Canceled bool
	// Tries and Attempts are, for OpLock, the tries used (as WithTries
	// counts them) and the attempts made (see AttemptEvent).
	Tries, Attempts int
	// Validity is, for a successful OpLock, OpExtend or OpKeepAlive, how
	// long the lock is held for sure from now (Until minus the time of the
	// event).
	Validity time.Duration
	// Held is, for OpUnlock, how long the lock had been held when Unlock
	// was called, from the start of the attempt that acquired it; 0 when
	// unknown (a value given with WithValue).
	Held time.Duration
	// Token is, for a successful OpLock with fencing, the acquisition's
	// fencing token (see WithFencing); 0 otherwise.
	Token uint64
}

// Outcome classifies the operation's result for a label:
//
//   - "ok": acquired, released or extended;
//   - "canceled": the caller's context ended first;
//   - "taken": a quorum of servers holds another value (*ErrTaken);
//   - "expired": Unlock found the key expired (ErrLockAlreadyExpired);
//   - "not_held": the Mutex had no value (ErrNotHeld);
//   - "failed": anything else (servers failed or missed the deadline, no
//     quorum either way, no validity left).
func (e DoneEvent) Outcome() string {
	return outcome(e.Err, e.Canceled)
}

// LostEvent reports a lock kept alive by KeepAlive that can no longer be
// proven held.
type LostEvent struct {
	Name string
	// Cause is the cause the holder's context is cancelled with; it wraps
	// ErrLockLost and says why.
	Cause error
	// Held is how long the lock had been held, from the start of the
	// attempt that acquired it; 0 when unknown (WithValue).
	Held time.Duration
}

func outcome(err error, canceled bool) string {
	if err == nil {
		return "ok"
	}
	if canceled {
		return "canceled"
	}
	var taken *ErrTaken
	switch {
	case errors.As(err, &taken):
		return "taken"
	case errors.Is(err, ErrLockAlreadyExpired):
		return "expired"
	case errors.Is(err, ErrNotHeld):
		return "not_held"
	}
	return "failed"
}

// SetObserver makes o observe the Mutexes that NewMutex makes from now on
// (those made before keep the observer they were made with); nil observes
// nothing, the default. WithObserver overrides it for one Mutex. It may be
// called concurrently with NewMutex.
func (r *Redsync) SetObserver(o Observer) {
	if o == nil {
		r.observer.Store(nil)
		return
	}
	r.observer.Store(&observerBox{o})
}

// observerBox holds an Observer for an atomic.Pointer.
type observerBox struct{ o Observer }

// redsyncObserver is what SetObserver set, or nil.
func (r *Redsync) redsyncObserver() Observer {
	if b := r.observer.Load(); b != nil {
		return b.o
	}
	return nil
}

// observeStart calls the Observer's Start; m.obs is not nil.
func (m *Mutex) observeStart(ctx context.Context, op Op, tries int) context.Context {
	if derived := m.obs.Start(ctx, StartEvent{Op: op, Name: m.name, Tries: tries}); derived != nil {
		return derived
	}
	return ctx
}

// canceledBy reports whether err is due to ctx having ended.
func canceledBy(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// heldFor is how long the lock has been held at now, or 0 when unknown.
func (m *Mutex) heldFor(now time.Time) time.Duration {
	m.mu.Lock()
	acquired := m.held.acquiredAt
	m.mu.Unlock()
	if acquired.IsZero() {
		return 0
	}
	return now.Sub(acquired)
}

// observeLost reports a lost lock kept alive; cause wraps ErrLockLost.
func (m *Mutex) observeLost(ctx context.Context, cause error) {
	if m.obs == nil {
		return
	}
	m.obs.Lost(ctx, LostEvent{Name: m.name, Cause: cause, Held: m.heldFor(time.Now())})
}
