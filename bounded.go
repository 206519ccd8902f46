package redsync

import (
	"context"
	"time"
)

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
// for a caller outlives the caller's cancellation. It is
// context.WithDeadline(context.WithoutCancel(caller), ...) without a timer
// of its own: bound's timer serves every round that shares it.
type detachedContext struct {
	bound  context.Context
	caller context.Context
}

func (d detachedContext) Deadline() (time.Time, bool) { return d.bound.Deadline() }

func (d detachedContext) Done() <-chan struct{} { return d.bound.Done() }

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
