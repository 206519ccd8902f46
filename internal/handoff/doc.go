// Package handoff lets a waiter for a lock learn when to try again instead
// of sleeping a random delay between tries, and lets a release hand the
// lock straight over to a waiter of the same process. It knows nothing of
// the lock itself: a waiter is described by plain values (a Spec) and the
// caller's callbacks (Config), so that every primitive can share it.
//
// The mechanisms, one file each:
//
//   - Queues (queue.go): the waiters of one process queue per name, first
//     come first served; only the head tries on a wake-up, so they do not
//     stampede, and they take turns. The head is woken once enough servers
//     (a quorum, less the servers that cannot announce) announced a
//     release since its last attempt started; announcements heard while a
//     waiter of this process holds the lock are late ones of the release
//     it took, and wake nobody. A release made by this process wakes the
//     head at once (ReleasedHere).
//   - The listener (listener.go): per server that can subscribe
//     (redis.Subscriber), one pub/sub connection subscribed to the release
//     channels (ReleaseChannel) that this process's waiters need, while
//     there are any. Lock and Unlock never wait for it.
//   - The hand-over (handover.go): when the head waiter waits with a value
//     ready, a releaser of this process offers it the lock (OfferHead);
//     the release script then sets the key from the releaser's value
//     straight to the waiter's on each server where nobody else listens,
//     and the waiter holds the lock once a quorum did, without a request
//     of its own.
//
// Releases that reach a listener leave a short-lived placeholder (Marker)
// in the key instead of deleting it: a waiter's acquire takes the key over
// from it, a plain SET NX (a newcomer, or the releaser trying again at
// once) is refused, so those who waited go first.
//
// What a user sees of all this, and its limits, is described in
// docs/waiting.md; this comment is the one place for the design.
package handoff

import "time"

// Marker is the value a release leaves in the key for the waiters it
// notified. It cannot be a lock value: it begins with the prefix that the
// caller reserves (no lock value may begin with "redsync:").
const Marker = "redsync:handoff"

// MaxGrace bounds how long the placeholder keeps a released lock for the
// waiters that were told about it.
const MaxGrace = 50 * time.Millisecond

// channelPrefix begins every release channel.
const channelPrefix = "redsync:released:"

// ReleaseChannel returns the pub/sub channel on which releases of name are
// announced.
func ReleaseChannel(name string) string {
	return channelPrefix + name
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
