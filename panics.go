package redsync

import (
	"context"
	"errors"
	"runtime/debug"

	"github.com/quorumlock/redsync/internal/nilness"
	"github.com/quorumlock/redsync/redis"
)

// Every call of this library into a Pool, or into what it returned, runs
// on a goroutine of the library: a panic there would crash the process
// beyond the caller's reach. The functions that make such calls (acquire,
// fencedAcquire, releaseOnce, eval, setIfMissing, and the listener's,
// through subscribe) recover a panic into their error (see PanicError),
// so that their callers' bookkeeping runs as after any failure; a round's
// worker recovers whatever else panics in an operation (roundState.run).
// A new call into a Pool belongs in one of them.

// recoverPanic, deferred, turns a panic of the calling function into a
// *PanicError in *err. It must be deferred before anything that may panic
// (a deferred conn.Close included) so that it runs last.
func recoverPanic(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Value: v, Stack: debug.Stack()}
	}
}

// subscribe is sub.Subscribe, whose panics, and those of the
// subscription's methods, are recovered into errors.
func subscribe(ctx context.Context, sub redis.Subscriber) (conn redis.Subscription, err error) {
	defer recoverPanic(&err)
	conn, err = sub.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	if nilness.IsNil(conn) {
		return nil, errNilSubscription
	}
	if sharded, ok := conn.(redis.ShardedSubscription); ok {
		return safeShardedSubscription{safeSubscription{conn}, sharded}, nil
	}
	return safeSubscription{conn}, nil
}

var errNilSubscription = errors.New("redsync: Subscribe returned neither a subscription nor an error")

// safeSubscription recovers the panics of a Subscription's methods into
// their errors.
type safeSubscription struct {
	s redis.Subscription
}

func (c safeSubscription) Subscribe(ctx context.Context, channels ...string) (err error) {
	defer recoverPanic(&err)
	return c.s.Subscribe(ctx, channels...)
}

func (c safeSubscription) Unsubscribe(ctx context.Context, channels ...string) (err error) {
	defer recoverPanic(&err)
	return c.s.Unsubscribe(ctx, channels...)
}

func (c safeSubscription) Receive() (ev redis.Event, err error) {
	defer recoverPanic(&err)
	return c.s.Receive()
}

func (c safeSubscription) Close() (err error) {
	defer recoverPanic(&err)
	return c.s.Close()
}

// safeShardedSubscription is safeSubscription for a
// redis.ShardedSubscription.
type safeShardedSubscription struct {
	safeSubscription
	sharded redis.ShardedSubscription
}

func (c safeShardedSubscription) SSubscribe(ctx context.Context, channels ...string) (err error) {
	defer recoverPanic(&err)
	return c.sharded.SSubscribe(ctx, channels...)
}

func (c safeShardedSubscription) SUnsubscribe(ctx context.Context, channels ...string) (err error) {
	defer recoverPanic(&err)
	return c.sharded.SUnsubscribe(ctx, channels...)
}
