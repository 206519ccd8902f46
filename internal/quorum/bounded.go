package quorum

import (
	"context"
	"sync/atomic"
	"time"
)

// Bounds makes the contexts that requests run on: detached from the
// caller's cancellation, bounded by an expiry, and shared between rounds
// that start close together (see Context). Their deadlines are time's:
// a context's deadline is always on the real clock. The zero Bounds is
// ready to use; its methods are safe for concurrent use.
type Bounds struct {
	bound atomic.Pointer[sharedBound]
}

// sharedBound is a context bounded by a deadline that the rounds with the
// same expiry share while they start before renewAt.
type sharedBound struct {
	ctx     context.Context
	expiry  time.Duration
	renewAt time.Time
	// cancel is never called: rounds may still use ctx when the next
	// sharedBound replaces it, and its timer frees it at the deadline.
	cancel context.CancelFunc
}

// BoundShare is the share of the expiry a shared bound is used for: a
// round that starts then is bounded by between (1 - 1/BoundShare) × expiry
// and the expiry.
const BoundShare = 10

// Context returns the context of a round of requests for a caller with
// ctx: ctx's values, none of its cancellation, and a deadline at most
// expiry and at least (1 - 1/BoundShare) of it from now. The deadline is
// shared with the other rounds of b that start within the same
// BoundShare-th of the expiry: one context and timer per share instead of
// one per round, and nothing for the round to cancel.
func (b *Bounds) Context(ctx context.Context, expiry time.Duration) context.Context {
	now := time.Now()
	s := b.bound.Load()
	if s == nil || s.expiry != expiry || !now.Before(s.renewAt) {
		shared, cancel := context.WithDeadline(context.Background(), now.Add(expiry))
		s = &sharedBound{ctx: shared, expiry: expiry, renewAt: now.Add(expiry / BoundShare), cancel: cancel}
		b.bound.Store(s)
	}
	if ctx == context.Background() {
		return s.ctx // no values to carry
	}
	return detachedContext{bound: s.ctx, caller: ctx}
}

// detachedContext carries the values of the caller's context, and the
// deadline and cancellation of bound instead of the caller's: work started
// for a caller outlives the caller's cancellation.
type detachedContext struct {
	bound  context.Context
	caller context.Context
}

// Deadline is bound's.
func (d detachedContext) Deadline() (time.Time, bool) { return d.bound.Deadline() }

// Done is bound's.
func (d detachedContext) Done() <-chan struct{} { return d.bound.Done() }

// Err is bound's.
func (d detachedContext) Err() error { return d.bound.Err() }

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
