// Package eventlog is the one recording Observer of the tests: it records
// every event a Redsync or Mutex reports, with the operation it belongs
// to, safely under concurrency, and lets a test read them back by kind,
// filter them and wait for one.
//
// The Recorder is generic over the five event types so that the root
// package's own tests, which cannot import a package that imports it, can
// use it too: each test package names it once with redsync's types, as
// internal/observertest does:
//
//	type Recorder = eventlog.Recorder[redsync.StartEvent, redsync.AttemptEvent,
//		redsync.NodeEvent, redsync.DoneEvent, redsync.LostEvent]
package eventlog

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"
)

// WaitBound is how long Wait waits for an event before it fails the test:
// long enough for a loaded machine, short of the test binary's timeout.
const WaitBound = 30 * time.Second

// Event is one recorded event: exactly one of Start, Attempt, Node, Done
// and Lost is set.
type Event[S, A, N, D, L any] struct {
	// Ctx is the context the event was reported with.
	Ctx context.Context
	// Op numbers the operation the event belongs to, from 1 in the order
	// of their Start events, found through the context that Start
	// returned; 0 for an event whose context carries none.
	Op int

	Start   *S
	Attempt *A
	Node    *N
	Done    *D
	Lost    *L
}

// Name returns the Name field of the event that is set ("" if none has
// one).
func (e Event[S, A, N, D, L]) Name() string {
	for _, p := range []any{e.Start, e.Attempt, e.Node, e.Done, e.Lost} {
		v := reflect.ValueOf(p)
		if v.IsNil() {
			continue
		}
		if f := v.Elem().FieldByName("Name"); f.Kind() == reflect.String {
			return f.String()
		}
	}
	return ""
}

// Recorder is an Observer that records every event. Its zero value is
// ready to use; its methods are safe for concurrent use.
type Recorder[S, A, N, D, L any] struct {
	// Keep, when not nil, is the events to record: the others are
	// dropped as they come, so that a recorder under load (thousands of
	// operations) stays small and quick. Set it before the Recorder is
	// used.
	Keep func(Event[S, A, N, D, L]) bool

	mu      sync.Mutex // guards the fields below
	events  []Event[S, A, N, D, L]
	ops     int
	changed chan struct{} // closed at the next event, when not nil
}

// opKey is the key of a Recorder's operation numbers in contexts.
type opKey struct{ r any }

func (r *Recorder[S, A, N, D, L]) record(ctx context.Context, e Event[S, A, N, D, L]) {
	e.Ctx = ctx
	e.Op = r.OpIn(ctx)
	if r.Keep != nil && !r.Keep(e) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Start records e and returns ctx carrying the operation's number.
func (r *Recorder[S, A, N, D, L]) Start(ctx context.Context, e S) context.Context {
	r.mu.Lock()
	r.ops++
	ctx = context.WithValue(ctx, opKey{r}, r.ops)
	r.mu.Unlock()
	r.record(ctx, Event[S, A, N, D, L]{Start: &e})
	return ctx
}

// Attempt records e.
func (r *Recorder[S, A, N, D, L]) Attempt(ctx context.Context, e A) {
	r.record(ctx, Event[S, A, N, D, L]{Attempt: &e})
}

// Node records e.
func (r *Recorder[S, A, N, D, L]) Node(ctx context.Context, e N) {
	r.record(ctx, Event[S, A, N, D, L]{Node: &e})
}

// Done records e.
func (r *Recorder[S, A, N, D, L]) Done(ctx context.Context, e D) {
	r.record(ctx, Event[S, A, N, D, L]{Done: &e})
}

// Lost records e.
func (r *Recorder[S, A, N, D, L]) Lost(ctx context.Context, e L) {
	r.record(ctx, Event[S, A, N, D, L]{Lost: &e})
}

// OpIn returns the number of the operation that ctx belongs to, by the
// context r's Start returned (0 if none).
func (r *Recorder[S, A, N, D, L]) OpIn(ctx context.Context) int {
	op, _ := ctx.Value(opKey{r}).(int)
	return op
}

// Events returns the events recorded so far, in the order they came, that
// every keep accepts.
func (r *Recorder[S, A, N, D, L]) Events(keep ...func(Event[S, A, N, D, L]) bool) []Event[S, A, N, D, L] {
	r.mu.Lock()
	events := append([]Event[S, A, N, D, L](nil), r.events...)
	r.mu.Unlock()
	return filter(events, keep)
}

// Named returns the events recorded so far of the lock called name.
func (r *Recorder[S, A, N, D, L]) Named(name string) []Event[S, A, N, D, L] {
	return r.Events(func(e Event[S, A, N, D, L]) bool { return e.Name() == name })
}

// Starts returns the StartEvents so far that every keep accepts.
func (r *Recorder[S, A, N, D, L]) Starts(keep ...func(S) bool) []S {
	return pick(r, func(e Event[S, A, N, D, L]) *S { return e.Start }, keep)
}

// Attempts returns the AttemptEvents so far that every keep accepts.
func (r *Recorder[S, A, N, D, L]) Attempts(keep ...func(A) bool) []A {
	return pick(r, func(e Event[S, A, N, D, L]) *A { return e.Attempt }, keep)
}

// Nodes returns the NodeEvents so far that every keep accepts.
func (r *Recorder[S, A, N, D, L]) Nodes(keep ...func(N) bool) []N {
	return pick(r, func(e Event[S, A, N, D, L]) *N { return e.Node }, keep)
}

// Dones returns the DoneEvents so far that every keep accepts.
func (r *Recorder[S, A, N, D, L]) Dones(keep ...func(D) bool) []D {
	return pick(r, func(e Event[S, A, N, D, L]) *D { return e.Done }, keep)
}

// Losts returns the LostEvents so far that every keep accepts.
func (r *Recorder[S, A, N, D, L]) Losts(keep ...func(L) bool) []L {
	return pick(r, func(e Event[S, A, N, D, L]) *L { return e.Lost }, keep)
}

// Wait returns the first event, recorded so far or to come, that every
// keep accepts. It fails the test if none came within WaitBound; call it
// from the test's goroutine.
func (r *Recorder[S, A, N, D, L]) Wait(t testing.TB, keep ...func(Event[S, A, N, D, L]) bool) Event[S, A, N, D, L] {
	t.Helper()
	timeout := time.NewTimer(WaitBound)
	defer timeout.Stop()
	seen := 0
	for {
		r.mu.Lock()
		fresh := append([]Event[S, A, N, D, L](nil), r.events[seen:]...)
		seen = len(r.events)
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if found := filter(fresh, keep); len(found) > 0 {
			return found[0]
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no such event within %v; recorded: %d events", WaitBound, seen)
		}
	}
}

func filter[E any](events []E, keep []func(E) bool) []E {
	out := events[:0]
next:
	for _, e := range events {
		for _, k := range keep {
			if !k(e) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func pick[S, A, N, D, L, E any](r *Recorder[S, A, N, D, L], of func(Event[S, A, N, D, L]) *E, keep []func(E) bool) []E {
	var out []E
	for _, e := range r.Events() {
		if p := of(e); p != nil {
			out = append(out, *p)
		}
	}
	return filter(out, keep)
}
