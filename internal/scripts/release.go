package scripts

import (
	_ "embed"
	"fmt"
)

//go:embed release.lua
var releaseLua string

// Release releases the lock key if it holds the holder's value: it hands
// the key straight to the first live waiter of the fleet queue (see
// AcquireQueued), or deletes it, and tells the waiters.
//
//	KEYS[1]  the lock key
//	KEYS[2]  the fleet queue: a sorted set of waiters' values, scored by
//	         their tickets
//	KEYS[3]  the waiters' entries: a hash of value -> "since lease expiry"
//	         (server milliseconds: when the value first queued, when its
//	         lease ends; its expiry in milliseconds)
//	KEYS[4]  the fencing counter (else any key of the slot)
//	ARGV[1]  the holder's value
//	ARGV[2]  the channel the release is announced on (PUBLISH)
//	ARGV[3]  the run, in milliseconds: after hand-overs in a row for that
//	         long, a release leaves the key free instead (see below)
//	ARGV[4]  the outsiders' window, in milliseconds
//
// The holder's value also leaves the queue (a waiter that gives up
// releases its value this way). When the key holds the value, the first
// waiter whose lease has not ended gets the key, with its own expiry, and
// the channel carries "h<waited>:<value>": that waiter's value and the
// milliseconds, by the server's clock, from its first queueing here to
// the hand-over, from which the waiter bounds when the key was set (see
// the fleet design in internal/handoff). To a fenced waiter it carries
// "f<waited>,<floor>:<value>": floor is one more than the counter, or the
// server's clock in microseconds if that is larger, read in the step
// that set the key, as FencedAcquire reads them. Waiters whose lease ended are
// dropped on the way. Without a live waiter the key is deleted, as
// redsync's release does, and the channel carries "". So it is by the first
// release in each period of the run's length (ARGV[3], periods counted
// from the epoch by the server's clock) once the server has handed the
// key over for a run in a row: the key is left free and AcquireQueued
// refuses it to queued waiters for the window (ARGV[4]), so that acquires
// that do not queue (SET NX) get a chance. Periods from the epoch make the
// servers open their windows at the same release, as far as their clocks
// agree. The run's start, the period last served and the window's end are
// fields of KEYS[3] ("redsync:run", "redsync:served", "redsync:window";
// no value begins with "redsync:"); a run starts at a hand-over and ends
// at a release that finds nobody queued. A server out of
// memory (maxmemory with noeviction) that refuses the hand-over's SET
// deletes the key instead.
//
// Replies (see ParseRelease): ReleaseHanded, ReleaseReleased,
// ReleaseOtherValue (nothing announced), ReleaseMissing.
//
// TIME is a non-deterministic command: Redis before 5 replicates a script
// that writes after one only as its effects, which redis.replicate_commands
// asks for (a no-op since Redis 7).
var Release = newScript(4, releaseLua)

// ReleaseReply is a reply of Release.
type ReleaseReply int64

// The replies of Release.
const (
	// ReleaseMissing: the key is missing (the lock expired).
	ReleaseMissing ReleaseReply = -1
	// ReleaseOtherValue: the key holds another value; nothing was done.
	ReleaseOtherValue ReleaseReply = 0
	// ReleaseReleased: the key was deleted.
	ReleaseReleased ReleaseReply = 1
	// ReleaseHanded: the key was handed to the first waiter of the queue.
	ReleaseHanded ReleaseReply = 2
)

// ParseRelease returns the reply of Release, or an error for a reply
// Release never makes.
func ParseRelease(reply any) (ReleaseReply, error) {
	if n, ok := reply.(int64); ok && n >= int64(ReleaseMissing) && n <= int64(ReleaseHanded) {
		return ReleaseReply(n), nil
	}
	return 0, fmt.Errorf("redsync: unexpected reply %#v to the release script", reply)
}
