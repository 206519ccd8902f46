package redsync

import (
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"time"

	"github.com/quorumlock/redsync/internal/nilness"
	"github.com/quorumlock/redsync/redis"
)

// The options of redsync are in this file, with the validation of every
// option; this library's additions are in options_beyond.go.

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
// time the lock is held without Extend. It must be at least 1 ms, and long
// enough that the per-server deadline (see WithTimeoutFactor) is at least
// 1 ms: 20 ms with the default timeout factor. Redis counts it in whole
// milliseconds, so a fraction of a millisecond is dropped, and every
// validity (Until) counts from what the servers were told. The default is
// 8 s.
func WithExpiry(expiry time.Duration) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.expiry = expiry
	})
}

// WithTries sets how many times Lock tries to acquire the lock before it
// gives up. It must be at least 1. The default is 32. TryLock always tries
// once.
func WithTries(tries int) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.tries = tries
	})
}

// WithRetryDelay sets a fixed wait between tries. The default is a random
// wait in [50 ms, 250 ms).
func WithRetryDelay(delay time.Duration) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.delayFunc = func(int) time.Duration {
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
		m.cfg.setNXOnExtend = true
	})
}

// WithRetryDelayFunc sets the function that decides the wait before each
// retry. A negative wait counts as zero.
func WithRetryDelayFunc(delayFunc DelayFunc) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.delayFunc = delayFunc
	})
}

// WithDriftFactor sets the share of the expiry subtracted from the
// validity to allow for clock drift between processes and servers. It must
// be in [0, 1). The default is 0.01.
func WithDriftFactor(factor float64) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.driftFactor = factor
	})
}

// WithTimeoutFactor sets the per-server deadline of every operation as a
// share of the expiry: a server that has not answered by then counts as
// failed for that operation. It must be in (0, 1), and the deadline it
// gives at least 1 ms (a request seldom comes back sooner, even on
// loopback): 0.000125 or more with the default expiry. The default is 0.05
// (400 ms with the default expiry).
func WithTimeoutFactor(factor float64) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.timeoutFactor = factor
	})
}

// WithGenValueFunc sets the function that makes the value stored in the
// key. It is called once per attempt: every try, and every attempt made
// on a wake-up (see WithHandoff), a waiting Lock calling it while it
// waits, on its own goroutine, so that a release can hand the lock over
// to it. Each value must be unique to its caller: a value shared by two
// Mutexes lets either release the other's lock. A value must not be empty
// nor begin with "redsync:", which this
// library reserves for what it stores in a key itself (the placeholder
// that keeps a released lock for its waiters, "redsync:handoff"): the
// attempt then fails with an *ArgumentError, before anything is sent. The
// default makes 16 random bytes (crypto/rand), base64-encoded.
func WithGenValueFunc(genValueFunc func() (string, error)) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.genValueFunc = genValueFunc
	})
}

// WithValue gives the Mutex the value of a lock taken elsewhere, so that it
// can Extend, KeepAlive or Unlock that lock without calling Lock: ownership
// moves to this Mutex. Lock replaces the value with a new one. An empty
// value, or one that begins with the reserved "redsync:" (see
// WithGenValueFunc), is reported by the Mutex's first operation as an
// *ArgumentError.
func WithValue(v string) Option {
	return OptionFunc(func(m *Mutex) {
		m.held.value = v
		m.cfg.valueGiven = true
	})
}

// WithFailFast makes a failed operation return as soon as its failure is
// decided (a quorum of servers refused or failed) instead of waiting for
// every server, up to the per-server deadline, so that its error names
// each of them. The default is false. It also makes a successful Lock
// return as soon as a quorum agreed; without it, a successful acquire
// waits for the other servers as long again as the quorum took (at least
// 100 µs, at most an eighth of the per-server deadline), so that on
// healthy servers the key is on every server when Lock returns, while a
// stalled server costs about the quorum's own time again. A successful
// Unlock, Extend or Valid returns at the quorum either way.
//
// Either way nothing is left behind: replies that arrive after an
// operation returned are still handled (a late successful acquire of a try
// that failed, or of a lock already unlocked, is released).
func WithFailFast(b bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.failFast = b
	})
}

// WithShufflePools makes the Mutex contact the servers in a random order,
// which spreads the first request of concurrent Mutexes over the servers.
// Node indexes in errors then refer to the shuffled order.
func WithShufflePools(b bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.shuffle = b
	})
}

// randomDelay is the default DelayFunc.
func randomDelay(int) time.Duration {
	return minRetryDelay + time.Duration(rand.Int63n(int64(maxRetryDelay-minRetryDelay)))
}

// reservedValuePrefix begins every value that this library stores in a
// lock key without it being a holder's (handoffMarker): no lock value may
// begin with it, so that none can be taken for one.
const reservedValuePrefix = "redsync:"

// minDeadline is the shortest per-server deadline that can work: a request
// seldom comes back sooner, even on loopback.
const minDeadline = time.Millisecond

// minKeepAliveInterval is the shortest keep-alive interval: the servers
// count the key's expiry in whole milliseconds, so extending it more often
// moves nothing and only loads them (an interval of a few nanoseconds, a
// likely slip of unit, sends extensions back to back, thousands a second).
const minKeepAliveInterval = time.Millisecond

// perServerDeadline is the per-server deadline of every operation of a
// Mutex with expiry and timeoutFactor.
func perServerDeadline(expiry time.Duration, timeoutFactor float64) time.Duration {
	return time.Duration(float64(expiry) * timeoutFactor)
}

// checkPools finds what is wrong with the pools given to New.
func checkPools(pools []redis.Pool) error {
	if len(pools) == 0 {
		return &ArgumentError{Arg: "pools", Problem: "New was given no pools; pass one redis.Pool per Redis server"}
	}
	for i, pool := range pools {
		if pool == nil {
			return &ArgumentError{Arg: "pools", Problem: fmt.Sprintf("pool #%d given to New is nil (an adapter's NewPool returns nil for a nil client)", i)}
		}
		if nilness.IsNil(pool) {
			return &ArgumentError{Arg: "pools", Problem: fmt.Sprintf("pool #%d given to New is a nil %T", i, pool)}
		}
	}
	for i := range pools {
		for j := i + 1; j < len(pools); j++ {
			if samePool(pools[i], pools[j]) {
				return &ArgumentError{Arg: "pools", Problem: fmt.Sprintf(
					"pools #%d and #%d given to New are the same Pool, which would count one server as two; pass one redis.Pool per Redis server", i, j)}
			}
		}
	}
	return nil
}

// samePool reports whether a and b are the same Pool value; pools that
// cannot be compared (a struct with a slice in it, say) count as distinct.
func samePool(a, b redis.Pool) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.ValueOf(a).Comparable() || !reflect.ValueOf(b).Comparable() {
		return false
	}
	return a == b
}

// checkConfig finds the first bad argument or option of NewMutex. It runs
// before NewMutex drops the fraction of a millisecond of the expiry.
func (m *Mutex) checkConfig() error {
	if m.rs.invalid != nil {
		return m.rs.invalid
	}
	switch {
	case m.name == "":
		return &ArgumentError{Arg: "name", Problem: "NewMutex was given an empty name; the name is the key that holds the lock"}
	case m.cfg.expiry < time.Millisecond:
		return &ArgumentError{Arg: "WithExpiry", Problem: fmt.Sprintf("expiry must be at least 1ms (Redis counts in milliseconds), got %v", m.cfg.expiry)}
	case m.cfg.tries < 1:
		return &ArgumentError{Arg: "WithTries", Problem: fmt.Sprintf("tries must be at least 1, got %d", m.cfg.tries)}
	case m.cfg.delayFunc == nil:
		return &ArgumentError{Arg: "WithRetryDelayFunc", Problem: "the delay function is nil"}
	case m.cfg.genValueFunc == nil:
		return &ArgumentError{Arg: "WithGenValueFunc", Problem: "the value function is nil"}
	case math.IsNaN(m.cfg.driftFactor) || m.cfg.driftFactor < 0 || m.cfg.driftFactor >= 1:
		return &ArgumentError{Arg: "WithDriftFactor", Problem: fmt.Sprintf("factor must be in [0, 1), got %v", m.cfg.driftFactor)}
	case math.IsNaN(m.cfg.timeoutFactor) || m.cfg.timeoutFactor <= 0 || m.cfg.timeoutFactor >= 1:
		return &ArgumentError{Arg: "WithTimeoutFactor", Problem: fmt.Sprintf("factor must be in (0, 1), got %v", m.cfg.timeoutFactor)}
	}
	expiry := m.cfg.expiry.Truncate(time.Millisecond)
	if err := checkDeadline(expiry, m.cfg.timeoutFactor); err != nil {
		return err
	}
	switch {
	case m.cfg.keepAliveInterval < 0:
		return &ArgumentError{Arg: "WithKeepAliveInterval", Problem: "the interval must be positive"}
	case m.cfg.keepAliveInterval > 0 && m.cfg.keepAliveInterval < minKeepAliveInterval:
		return &ArgumentError{Arg: "WithKeepAliveInterval", Problem: fmt.Sprintf(
			"the interval must be at least %v (the servers count the key's expiry in milliseconds: extending more often moves nothing), got %v", minKeepAliveInterval, m.cfg.keepAliveInterval)}
	case m.cfg.keepAliveInterval >= expiry:
		return &ArgumentError{Arg: "WithKeepAliveInterval", Problem: fmt.Sprintf("the interval must be shorter than the expiry (%v), got %v", expiry, m.cfg.keepAliveInterval)}
	}
	if m.cfg.valueGiven {
		return checkValue("WithValue", m.held.value)
	}
	return nil
}

// checkDeadline reports a per-server deadline below minDeadline, naming the
// option to change and the smallest value that works: the timeout factor
// when it is not the default and a factor below 1 can make it, the expiry
// otherwise.
func checkDeadline(expiry time.Duration, timeoutFactor float64) error {
	deadline := perServerDeadline(expiry, timeoutFactor)
	if deadline >= minDeadline {
		return nil
	}
	given := fmt.Sprintf("the per-server deadline (expiry %v × timeout factor %v = %v) must be at least %v, or no server can answer in time", expiry, timeoutFactor, deadline, minDeadline)
	if timeoutFactor != defaultTimeoutFactor {
		factor := float64(minDeadline) / float64(expiry)
		for perServerDeadline(expiry, factor) < minDeadline {
			factor = math.Nextafter(factor, 1)
		}
		if factor < 1 {
			return &ArgumentError{Arg: "WithTimeoutFactor", Problem: fmt.Sprintf("%s: with this expiry the smallest factor is %v", given, factor)}
		}
	}
	least := time.Duration(math.Ceil(float64(minDeadline) / timeoutFactor)).Truncate(time.Millisecond)
	for perServerDeadline(least, timeoutFactor) < minDeadline {
		least += time.Millisecond
	}
	return &ArgumentError{Arg: "WithExpiry", Problem: fmt.Sprintf("%s: with this timeout factor the smallest expiry is %v", given, least)}
}

// checkValue returns an *ArgumentError naming arg when v cannot be a lock
// value: it is empty, or begins with reservedValuePrefix.
func checkValue(arg, v string) error {
	switch {
	case v == "":
		return &ArgumentError{Arg: arg, Problem: "the lock value is empty; a value must be unique to its holder"}
	case strings.HasPrefix(v, reservedValuePrefix):
		return &ArgumentError{Arg: arg, Problem: fmt.Sprintf(
			"the lock value %q begins with %q, which this library reserves for what it stores in a lock key itself (such as the hand-off placeholder %q)",
			v, reservedValuePrefix, handoffMarker)}
	}
	return nil
}

// checkedValue makes a lock value with gen, the function of
// WithGenValueFunc, and checks it: the one place every value made for an
// attempt goes through.
func checkedValue(gen func() (string, error)) (string, error) {
	v, err := gen()
	if err != nil {
		return "", err
	}
	if err := checkValue("WithGenValueFunc", v); err != nil {
		return "", err
	}
	return v, nil
}
