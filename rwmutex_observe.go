package redsync

import (
	"context"
	"time"
)

// observeOp runs fn as the operation op of m's Observer, if any, for the
// primitives built on m (RWMutex, Election): Start before, with tries;
// Done after, with what fn returned and what it filled in e (Tries,
// Attempts, Validity, Token, Held). fn runs with the context Start
// returned, so that the rounds it runs report their replies (watchRound)
// and nested operations to it.
func (m *Mutex) observeOp(ctx context.Context, op Op, tries int, fn func(ctx context.Context, e *DoneEvent) error) error {
	if m.obs == nil {
		var e DoneEvent
		return fn(ctx, &e)
	}
	start := time.Now()
	ctx = m.observeStart(ctx, op, tries)
	e := DoneEvent{Op: op, Name: m.name}
	err := fn(ctx, &e)
	e.Duration, e.Err, e.Canceled = time.Since(start), err, canceledBy(ctx, err)
	if err != nil {
		e.Validity, e.Token = 0, 0
	}
	m.obs.Done(ctx, e)
	return err
}
