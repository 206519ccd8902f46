package redsync

import (
	"context"
	"fmt"
	"strconv"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// Fencing of the acquisitions of a MultiMutex and a Semaphore: the
// Mutex's fencing (fencing.go), on several lock keys at once. The acquire
// script of each server reads the counters and the server's clock in the
// step that sets the keys; once a quorum granted, the token is one more
// than the highest counter read, or the highest clock if that is larger
// (fencing.Reads); it counts once a quorum stored it back, on each server
// while every key still holds the holder's value. Why that orders the
// tokens is argued in the doc comments of MultiMutex and Semaphore, after
// docs/fencing.md.

// addFenceRead adds what one server read, when it granted, to reads.
func addFenceRead(reads *fencing.Reads, r scripts.FencedMultiReply) {
	// Reads.Token is the larger of one more than the highest counter and
	// the highest clock: both are floors, and so is this server's.
	reads.AddFloor(max(r.Counter+1, r.Clock))
}

// fenceKeyInUse is the error of server node, on which a fencing counter
// key of what holds something that is not a counter.
func (s keyServers) fenceKeyInUse(node int, what string) error {
	return fmt.Errorf("%w: a fencing counter key of %s on node #%d holds a value that is not a counter (a lock of a Mutex of that name?), "+
		"and the counter is never written over it", ErrFenceKeyInUse, what, s.t.serverIndex(node))
}

// writeBackToken stores token in the counters of a quorum of servers, on
// each only while every key of locks holds value, before the acquisition
// may count. The write-back to a server waits for that server's acquire
// reply (replies), so that it cannot overtake the acquire on its way.
// With paired, counters[i] is the counter of locks[i] (a MultiMutex's, by
// hash slot on a Redis Cluster); otherwise counters are the counters of
// all of locks together (a Semaphore's one). what names the holder in
// errors.
func (s keyServers) writeBackToken(ctx context.Context, locks, counters []string, paired bool, value string, token uint64, replies *pendingReplies, what string) roundResult {
	args := []any{value, strconv.FormatUint(token, 10), fenceCounterTTLMillis}
	return s.t.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		replies.await(ctx, node)
		stored := true
		combine := func(_ []int, reply any) (bool, error) {
			ok, inUse := fencing.WriteBack(reply)
			if inUse {
				stored = false
				return false, s.fenceKeyInUse(node, what)
			}
			stored = stored && ok
			return stored, nil
		}
		var err error
		if paired {
			err = s.evalPaired(ctx, node, pool, scripts.MultiFenceWriteBack, locks, counters, args, combine)
		} else {
			var reply any
			if reply, err = evalRetried(ctx, pool, scripts.MultiFenceWriteBack, unpairedKeysAndArgs(locks, counters, args)); err == nil {
				_, err = combine(nil, reply)
			}
		}
		return stored && err == nil, err
	}, nil, skipAlways)
}

// unpairedKeysAndArgs are the keysAndArgs of a fenced multi-key script
// (see evalPaired) for locks and counters that are not paired.
func unpairedKeysAndArgs(locks, counters []string, args []any) []any {
	out := make([]any, 0, 2+len(locks)+len(counters)+len(args))
	out = append(out, len(locks)+len(counters))
	for _, k := range locks {
		out = append(out, k)
	}
	for _, k := range counters {
		out = append(out, k)
	}
	out = append(out, len(locks))
	return append(out, args...)
}
