package redsync

import (
	"context"
	"time"
)

// boundedContext returns the context of a round of operations for a caller
// with ctx: ctx's values, none of its cancellation, and a deadline at most
// expiry and at least nine tenths of it from now, shared with the other
// rounds of r that start close together (see quorum.Bounds).
func (r *Redsync) boundedContext(ctx context.Context, expiry time.Duration) context.Context {
	return r.engine.Bounded(ctx, expiry)
}
