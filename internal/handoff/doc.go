// Package handoff lets a waiter for a lock learn when the lock is its own,
// or when to try again, instead of sleeping a random delay between tries.
// It knows nothing of the lock itself: a waiter is described by plain
// values (a Spec), so that every primitive can share it.
//
// The fleet queue (the servers' side, in the scripts AcquireQueued and
// Release of internal/scripts): a Lock that may wait queues its value on
// every server that refuses it, in a sorted set beside the lock key
// (QueueKeys), scored by a ticket that is the same on every server (the
// microsecond its Lock call started, by its process's clock; ties by
// value). Each entry has a lease, renewed by the waiter's attempts a few
// times per lease; a release passes over entries whose lease ended. A
// release sets the key straight from the holder's value to the value of
// the first live entry, with that waiter's expiry, and announces on the
// release channel "h<waited>:<value>": whichever process the waiter is
// in, its listener hears it on the pub/sub connection it already has, and
// the waiter holds the lock once a quorum of servers handed it over, one
// round trip after the Unlock call, with no request of its own. waited is
// how long the value had queued on that server by the server's clock,
// from which the waiter bounds when the key was set (the argument is in
// the root's fleet.go). A free key goes to a waiter's attempt only when
// no live entry with a smaller ticket queues: waiters take turns in the
// order they started waiting, across the fleet; a plain SET NX
// (redsync's, TryLock's) still takes a free key, but a contended key is
// never free while waiters queue.
//
// Servers that disagree (a value queued on some servers only, after a
// failure) may hand the key to different waiters. The rule that resolves
// it: a waiter that holds some servers but no quorum waits a short grace
// for the others to hand the key to it too, then gives up what it holds
// (its release hands the key on there) and queues again at the same
// ticket with a fresh value. Every server hands to its own first live
// entry and tickets order the entries alike everywhere, so once the
// servers know the same waiters, one waiter gets them all.
//
// The process's side, one file each:
//
//   - Queues (queue.go): the waiters of one process, per name, first come
//     first served. A waiter tells the value it queues with (Waiter.Queue);
//     an announced hand-over to that value is recorded for it
//     (Waiter.Handed) and wakes it. An empty announcement (a release that
//     found nobody queued, so the key is free) wakes the head waiter once
//     enough servers (a quorum, less those that cannot announce) made one
//     since its last attempt started; announcements heard while a waiter
//     of this process holds the lock are late ones of the release it took.
//     A release made by this process that handed nothing over wakes the
//     head at once (ReleasedHere).
//   - The listener (listener.go): per server that can subscribe
//     (redis.Subscriber), one pub/sub connection subscribed to the release
//     channels that this process's waiters need, while there are any: the
//     sharded one of a name (ShardedReleaseChannel) where the connection
//     and the server can, the classic one (ReleaseChannel) otherwise. Lock
//     and Unlock never wait for it. A subscription newly confirmed counts
//     as an empty announcement: a release may have gone unheard before it.
//
// Which channel a release publishes on is the release script's rule (see
// scripts.Release): sharded where the server has SPUBLISH, classic where
// it has not and while the server counts a classic subscriber, so that a
// listener of either kind hears the releases of its server.
//
// What a user sees of all this, and its limits, is described in
// docs/waiting.md; this comment is the one place for the design.
package handoff

import (
	"strings"
	"time"

	"github.com/quorumlock/redsync/internal/hashslot"
)

// Marker is a value that the acquire scripts of waiters that do not queue
// take over (earlier releases left it in the key as a placeholder). It
// cannot be a lock value: it begins with the prefix that the caller
// reserves (no lock value may begin with "redsync:").
const Marker = "redsync:handoff"

// MaxGrace bounds how long a waiter that holds some servers but no quorum
// waits for the others to hand it the key.
const MaxGrace = 50 * time.Millisecond

// QueueKeys returns the keys of name's fleet queue on a server: the
// sorted set of the waiters' values, and the hash of their entries (see
// the release script). They hash to the Redis Cluster slot of name, so
// that one script may touch them with the lock key. A name with a "}" and
// no hash tag has no such keys (ok false; both are name itself): wrapped
// in braces it would hash elsewhere. Its waiters do not queue.
func QueueKeys(name string) (queue, entries string, ok bool) {
	if !hashslot.Wrappable(name) {
		return name, name, false
	}
	base := name
	if !hashslot.HasTag(name) {
		base = "{" + name + "}"
	}
	return base + ":redsync:queue", base + ":redsync:waiters", true
}

// channelPrefix begins every classic release channel, and the sharded
// one of a name with a hash tag.
const channelPrefix = "redsync:released:"

// ShardedPrefix begins the sharded release channel of a name without a
// hash tag, which is ShardedPrefix + "{" + name + "}".
const ShardedPrefix = "redsync:released"

// ReleaseChannel returns the classic pub/sub channel (PUBLISH, SUBSCRIBE)
// on which releases of name are announced.
func ReleaseChannel(name string) string {
	return channelPrefix + name
}

// ShardedReleaseChannel returns the sharded pub/sub channel (SPUBLISH,
// SSUBSCRIBE, Redis 7.0+) on which releases of name are announced, or ""
// for a name that has none. The channel hashes to the Redis Cluster slot
// of name, so that the release script may publish on it: it is
// "redsync:released{name}" for a name without a hash tag and
// ReleaseChannel(name) for one with a tag; a name with a "}" and no tag
// (see hashslot.Wrappable) has no such channel, and its releases are
// announced on the classic channel only.
func ShardedReleaseChannel(name string) string {
	switch {
	case hashslot.HasTag(name):
		return channelPrefix + name
	case hashslot.Wrappable(name):
		return ShardedPrefix + "{" + name + "}"
	}
	return ""
}

// releaseName returns the name whose releases channel announces, classic
// or sharded, and whether channel is a release channel at all.
func releaseName(channel string) (string, bool) {
	if name, ok := strings.CutPrefix(channel, channelPrefix); ok {
		return name, true
	}
	if rest, ok := strings.CutPrefix(channel, ShardedPrefix+"{"); ok && strings.HasSuffix(rest, "}") {
		return rest[:len(rest)-1], true
	}
	return "", false
}

// A Clock tells the time the wake rules and hand-overs compare; tests give
// a fake one. It must be safe for concurrent use.
type Clock interface {
	Now() time.Time
}

// realClock is the Clock used when Config.Clock is nil.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// A Counter counts running goroutines, so that the caller can wait for the
// listeners to stop (Redsync.Wait). It must be safe for concurrent use.
type Counter interface {
	Add()  // a goroutine starts
	Done() // a goroutine ends
}
