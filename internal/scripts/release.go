package scripts

import (
	_ "embed"
	"fmt"
)

//go:embed release.lua
var releaseLua string

//go:embed hand_over.lua
var handOverLua string

// Release releases the lock key if it holds the holder's value, and tells
// the waiters.
//
//	KEYS[1]  the lock key
//	ARGV[1]  the holder's value
//	ARGV[2]  the channel the release is announced on (PUBLISH)
//	ARGV[3]  the hand-off placeholder
//	ARGV[4]  how long the placeholder stays, in milliseconds
//	ARGV[5]  how many listeners of the releaser's own process to leave
//	         out of the count of those who heard the release, or -1 for a
//	         release that never reserves the key (the clean-up of a failed
//	         attempt)
//
// When the announcement reached more listeners than ARGV[5] (and ARGV[5]
// is not negative), the key is not deleted but set to the placeholder for
// ARGV[4] milliseconds, which only a waiter's acquire (AcquireAfterWait)
// takes over: those who waited go first. A server out of memory (maxmemory
// with noeviction) refuses that SET: the key is then deleted, as redsync's
// release does.
//
// Replies (see ParseRelease): ReleaseReleased, ReleaseOtherValue (nothing
// done, nothing announced), ReleaseMissing.
var Release = newScript(1, releaseLua)

// HandOver is Release that hands the lock over to a waiter of the
// releaser's own process, when nobody else listens for the lock.
//
//	KEYS[1]  the lock key
//	ARGV[1]  the releaser's value
//	ARGV[2]  the lock's channel
//	ARGV[3]  the hand-off placeholder
//	ARGV[4]  how long the placeholder stays, in milliseconds
//	ARGV[5]  the waiter's value
//	ARGV[6]  the waiter's expiry, in milliseconds
//
// When nobody but the releaser's process listens on ARGV[2] (PUBSUB
// NUMSUB at most 1), the key is set from the releaser's value straight to
// the waiter's, for ARGV[6] milliseconds, and nothing is announced;
// otherwise it releases as Release does with ARGV[5] 0, so that waiters of
// other processes get their turn. A server out of memory refuses either
// SET, and then the key is deleted (and, when the hand-over failed that
// way, nothing announced: the waiter of this process is told by its
// releaser).
//
// Replies (see ParseHandOver): HandOverHanded (also when the key holds the
// waiter's value already: a request sent again), ReleaseReleased,
// ReleaseOtherValue, ReleaseMissing.
//
// PUBSUB NUMSUB is a non-deterministic command: Redis before 5 replicates
// a script that writes after one only as its effects, which
// redis.replicate_commands asks for (a no-op since Redis 7).
var HandOver = newScript(1, handOverLua)

// ReleaseReply is a reply of Release or HandOver.
type ReleaseReply int64

// The replies of Release and HandOver.
const (
	// ReleaseMissing: the key is missing (the lock expired).
	ReleaseMissing ReleaseReply = -1
	// ReleaseOtherValue: the key holds another value; nothing was done.
	ReleaseOtherValue ReleaseReply = 0
	// ReleaseReleased: the key was deleted, or reserved for the waiters.
	ReleaseReleased ReleaseReply = 1
	// HandOverHanded: HandOver set the key to the waiter's value (only
	// HandOver replies it).
	HandOverHanded ReleaseReply = 2
)

// ParseRelease returns the reply of Release, or an error for a reply
// Release never makes.
func ParseRelease(reply any) (ReleaseReply, error) {
	return parseRelease(reply, ReleaseReleased, "release")
}

// ParseHandOver returns the reply of HandOver, or an error for a reply
// HandOver never makes.
func ParseHandOver(reply any) (ReleaseReply, error) {
	return parseRelease(reply, HandOverHanded, "hand-over")
}

// parseRelease reads a reply between ReleaseMissing and highest of the
// script named what.
func parseRelease(reply any, highest ReleaseReply, what string) (ReleaseReply, error) {
	if n, ok := reply.(int64); ok && n >= int64(ReleaseMissing) && n <= int64(highest) {
		return ReleaseReply(n), nil
	}
	return 0, fmt.Errorf("redsync: unexpected reply %#v to the %s script", reply, what)
}
