package redsync

import (
	"math/rand"
	"time"
)

// The default retry delay is drawn uniformly from [minRetryDelay, maxRetryDelay).
const (
	minRetryDelay = 50 * time.Millisecond
	maxRetryDelay = 250 * time.Millisecond
)

// A DelayFunc returns how long Lock waits before try number tries (counted
// from 1 for the first retry).
type DelayFunc func(tries int) time.Duration

// An Option configures a Mutex. Options are applied by NewMutex, in order.
type Option interface {
	Apply(*Mutex)
}

// OptionFunc is a function that configures a Mutex.
type OptionFunc func(*Mutex)

// Apply calls f(mutex).
func (f OptionFunc) Apply(mutex *Mutex) {
	f(mutex)
}

// WithExpiry sets how long the key lives on each server, and so the longest
// time the lock is held without Extend. It must be at least 1 ms (Redis
// counts in milliseconds). The default is 8 s.
func WithExpiry(expiry time.Duration) Option {
	return OptionFunc(func(m *Mutex) {
		m.expiry = expiry
	})
}

// WithTries sets how many times Lock tries to acquire the lock before it
// gives up. It must be at least 1. The default is 32. TryLock always tries
// once.
func WithTries(tries int) Option {
	return OptionFunc(func(m *Mutex) {
		m.tries = tries
	})
}

// WithRetryDelay sets a fixed wait between tries. The default is a random
// wait in [50 ms, 250 ms).
func WithRetryDelay(delay time.Duration) Option {
	return OptionFunc(func(m *Mutex) {
		m.delayFunc = func(int) time.Duration {
			return delay
		}
	})
}

// WithSetNXOnExtend makes Extend also set the key on a server where it is
// missing (for example a server restarted without persistence), so the lock
// keeps a quorum while servers come and go. A server holding another value
// is left alone.
func WithSetNXOnExtend() Option {
	return OptionFunc(func(m *Mutex) {
		m.setNXOnExtend = true
	})
}

// WithRetryDelayFunc sets the function that decides the wait before each
// retry. A negative wait counts as zero.
func WithRetryDelayFunc(delayFunc DelayFunc) Option {
	return OptionFunc(func(m *Mutex) {
		m.delayFunc = delayFunc
	})
}

// WithDriftFactor sets the share of the expiry subtracted from the
// validity to allow for clock drift between processes and servers. It must
// be in [0, 1). The default is 0.01.
func WithDriftFactor(factor float64) Option {
	return OptionFunc(func(m *Mutex) {
		m.driftFactor = factor
	})
}

// WithTimeoutFactor sets the per-server deadline of every operation as a
// share of the expiry: a server that has not answered by then counts as
// failed for that operation. It must be in (0, 1). The default is 0.05
// (400 ms with the default expiry).
func WithTimeoutFactor(factor float64) Option {
	return OptionFunc(func(m *Mutex) {
		m.timeoutFactor = factor
	})
}

// WithGenValueFunc sets the function that makes the value stored in the
// key. It is called once per attempt (every try, and every attempt made
// on a wake-up, see WithHandoff; a waiting Lock makes its next value while
// it waits, on its own goroutine, so that a release can hand the lock over
// to it), and each value must be unique to its
// caller: a value shared by two Mutexes lets either release the other's
// lock. The default makes 16 random bytes (crypto/rand), base64-encoded.
func WithGenValueFunc(genValueFunc func() (string, error)) Option {
	return OptionFunc(func(m *Mutex) {
		m.genValueFunc = genValueFunc
	})
}

// WithValue gives the Mutex the value of a lock taken elsewhere, so that it
// can Extend or Unlock that lock without calling Lock: ownership moves to
// this Mutex. Lock replaces the value with a new one.
func WithValue(v string) Option {
	return OptionFunc(func(m *Mutex) {
		m.value = v
	})
}

// WithFailFast makes a failed operation return as soon as its failure is
// decided (a quorum of servers refused or failed) instead of waiting for
// every server, up to the per-server deadline, so that its error names
// each of them. The default is false. It also makes a successful operation
// return as soon as a quorum agreed; without it, a success waits for the
// other servers as long again as the quorum took (between 100 µs and 2 ms,
// never past the per-server deadline), so that on healthy servers the
// operation is done on every server when it returns, while a stalled
// server costs at most 2 ms.
//
// Either way nothing is left behind: replies that arrive after an
// operation returned are still handled (a late successful acquire of a try
// that failed, or of a lock already unlocked, is released).
func WithFailFast(b bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.failFast = b
	})
}

// WithShufflePools makes the Mutex contact the servers in a random order,
// which spreads the first request of concurrent Mutexes over the servers.
// Node indexes in errors then refer to the shuffled order.
func WithShufflePools(b bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.shuffle = b
	})
}

// WithHandoff switches hand-off on (the default) or off. With hand-off, a
// Lock that finds the lock taken waits for it to be released rather than
// for the retry delay: the servers announce releases (pub/sub, on pools
// that are a redis.Subscriber, as every adapter of this project is), the
// waiters of one process queue per name and take turns, and a refused try
// tells when the key expires, so the wait never outlasts it. A Lock that
// finds other waiters of its process queued for the name joins them
// without a first try (TryLock and WithTries(1) always try). The retry
// delay stays the upper bound of each wait, and WithTries keeps its
// meaning: the number of delay periods Lock may wait, wake-ups within a
// period not counting.
//
// When the head waiter is in the process of the Mutex that unlocks (the
// same Redsync), Unlock hands the lock over to it: on each server where
// nobody else listens for the name, the release sets the key straight to
// the waiter's value, and the waiter holds the lock once a quorum did,
// with its validity counted from before the release was sent. The lock
// then changes hands in one round trip. Where another process listens,
// the server releases as usual, so that its waiters get their turn, and
// after 16 hand-overs of a name in a row one Unlock releases as usual
// anyway (a server may not know of every listener: on a Redis Cluster it
// counts only its own). Not with WithFencing or WithShufflePools, on
// either side.
//
// WithHandoff(false) makes Lock poll exactly as redsync does: a plain
// SET NX per try, one try per retry delay, no subscription, no queue.
// Unlock announces releases (and hands locks over) either way, for the
// waiters of other Mutexes.
func WithHandoff(enabled bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.handoff = enabled
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

// randomDelay is the default DelayFunc.
func randomDelay(int) time.Duration {
	return minRetryDelay + time.Duration(rand.Int63n(int64(maxRetryDelay-minRetryDelay)))
}
