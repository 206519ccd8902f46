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
