package redsync

import "time"

// The options below are this library's additions to redsync's (options.go).

// WithHandoff switches hand-off on (the default) or off. With hand-off, a
// Lock that finds the lock taken waits to be told it was released, or
// until the key expires, rather than for the retry delay: releases are
// announced to pools that are a redis.Subscriber (as every adapter of this
// project is), and the waiters of one process queue per name and take
// turns. A Lock that finds waiters of its process queued for the name
// joins them without a first try (TryLock and WithTries(1) always try).
// The retry delay stays the upper bound of each wait, and WithTries keeps
// its meaning: the number of delay periods Lock may wait, wake-ups within
// a period not counting. An Unlock whose name has a waiter in the same
// Redsync may hand the lock straight over to it, in the release; not with
// WithFencing or WithShufflePools, on either side.
//
// WithHandoff(false) makes Lock poll exactly as redsync does: a plain
// SET NX per try, one try per retry delay, no subscription, no queue.
// Unlock announces releases (and hands locks over) either way, for the
// waiters of other Mutexes. How waiting and the hand-over work, and when a
// release is not handed over:
// https://github.com/quorumlock/redsync/blob/main/docs/waiting.md.
func WithHandoff(enabled bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.handoff = enabled
	})
}

// WithObserver makes o observe the Mutex, instead of the observer of its
// Redsync (see Redsync.SetObserver); WithObserver(nil) observes nothing.
// See Observer for when its methods are called.
func WithObserver(o Observer) Option {
	return OptionFunc(func(m *Mutex) {
		m.obs = o
	})
}

// WithKeepAliveInterval sets how often KeepAlive extends the lock. It must
// be at least 1 ms (the servers count the key's expiry in milliseconds, so
// extending more often moves nothing) and shorter than the expiry. The
// default is a third of the expiry.
func WithKeepAliveInterval(interval time.Duration) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.keepAliveInterval = interval
		if interval <= 0 {
			// 0 means "the default" inside; keep a bad value visible.
			m.cfg.keepAliveInterval = -1
		}
	})
}

// WithFencing switches fencing tokens on or off (off by default). With
// fencing, every successful Lock or TryLock gives the Mutex a token (see
// Token) strictly greater than the token of every earlier acquisition of
// the name made with fencing, by any Mutex in any process, as long as the
// Redlock assumptions hold: a server that lost its data comes back only
// after the longest expiry, and the servers' clocks differ by less than
// that. A storage that refuses writes with a token below the highest it
// accepted then rejects a holder that paused past its lease.
//
// The token is agreed through the quorum that grants the lock, and Lock
// returns only once a quorum of servers stored it: one more round trip
// per acquisition, none with a single server. A try whose token fewer than
// a quorum stored fails with ErrTokenNotStored, and Lock tries again as
// usual. Each server keeps the counter in a key beside the lock key, in
// its hash slot: "<name>:redsync:fence" when name has a Redis Cluster hash
// tag, "{<name>}:redsync:fence" otherwise. The lock key and its value stay
// as without fencing, so Mutexes with and without fencing, and redsync
// v4, exclude each other on a name. Lock fails at once with an error
// wrapping ErrFenceKeyInUse when a counter key holds something else, and,
// on a Redis Cluster, with an *ArgumentError for a name with "}" but no
// hash tag. How the token is agreed and why it only grows:
// https://github.com/quorumlock/redsync/blob/main/docs/fencing.md.
func WithFencing(enabled bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.fencing = enabled
	})
}

// WithToken gives the Mutex the fencing token of a lock taken elsewhere,
// whose value WithValue gives it: Token returns it until the Mutex's next
// acquisition, so that a process the lock was handed to writes with the
// token of that lock. It has no other effect.
func WithToken(token uint64) Option {
	return OptionFunc(func(m *Mutex) {
		m.held.token = token
	})
}
