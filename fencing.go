package redsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// WithFencing switches fencing tokens on or off (off by default). With
// fencing, every successful Lock or TryLock gives the Mutex a token (see
// Token) that is strictly greater than the token of every earlier
// acquisition of the same name, by any Mutex in any process that uses
// fencing, as long as the Redlock assumptions hold (see below). A storage
// that remembers the highest token it has seen and refuses writes with a
// lower one then rejects a holder that paused past its lease and writes
// after the next holder: the objection to Redlock without tokens.
//
// # How the token is agreed
//
// Every server keeps a counter beside the lock key (see the Cluster note
// below for its name). The acquire reads, in the same script that sets the
// lock key, the server's counter and its clock (TIME). Once a quorum has
// granted the lock, the token is the larger of the highest counter read
// plus one and the highest clock read, in microseconds. Before Lock
// returns, the token is written back to the counters of a quorum, on each
// server only while the key still holds this Mutex's value; Lock fails the
// attempt (and tries again as usual) when fewer than a quorum store it.
//
// Any two quorums share a server, so a later holder reads at least the
// token of every earlier one, and the servers' clocks are the floor for a
// server restarted empty; the argument in full, and what it assumes of
// restarts and clocks (restart an emptied server only after the longest
// expiry, keep the servers' clocks closer than that), is in
// https://github.com/quorumlock/redsync/blob/main/docs/fencing.md.
//
// # Cost
//
// One more round trip per acquisition (the write-back) and one script
// instead of SET NX for the acquire. With a single server, which is its
// own quorum, the acquire script stores the token itself and there is no
// write-back. Extend, KeepAlive and Unlock cost the same as without
// fencing, and keep the token. An Observer sees the write-back in the
// duration of the attempt, not as node events of its own.
//
// # The keys
//
// The lock key and its value stay as without fencing, so Mutexes with and
// without fencing, and redsync v4, exclude each other on a name; only
// acquisitions made with fencing count and get tokens. The counter is
// "<name>:redsync:fence" when name has a Redis Cluster hash tag (a
// non-empty part between the first "{" and the first "}" after it), and
// "{<name>}:redsync:fence" otherwise: either way it lands in the lock
// key's hash slot, as a Redis Cluster needs for a script on two keys. The
// scripts never write the counter over a key that holds anything but a
// decimal number (the lock of a Mutex named like the counter, say): Lock
// then fails at once with an error wrapping ErrFenceKeyInUse. A
// name that contains "}" without a hash tag cannot be matched; on a Redis
// Cluster, Lock then fails at once with an *ArgumentError that says so
// (give such names a hash tag).
func WithFencing(enabled bool) Option {
	return OptionFunc(func(m *Mutex) {
		m.cfg.fencing = enabled
	})
}

// Token returns the fencing token of the Mutex's last successful
// acquisition (see WithFencing): a number that grows with every
// acquisition of the name, to be passed to the storage the lock protects.
// It is 0 before the first acquisition and without fencing; a Mutex given
// the value of a lock taken elsewhere (WithValue) has the token given with
// WithToken, or 0. It keeps its value after Unlock, as Value does.
//
// Tokens start from the servers' clocks in microseconds since 1970, so
// they are large (about 1.8e15 in 2027) and grow by much more than one
// between acquisitions that are far apart; only their order means
// anything.
func (m *Mutex) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held.token
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

// fenceSuffix ends the name of the counter key of fencing tokens.
const fenceSuffix = ":redsync:fence"

// fenceCounterTTL is how long a counter lives after its last write-back.
const fenceCounterTTL = 24 * time.Hour

// fenceKey returns the key of name's fencing counter, in the hash slot of
// name whenever that is possible (see WithFencing).
func fenceKey(name string) string {
	if hasHashTag(name) {
		return name + fenceSuffix
	}
	return "{" + name + "}" + fenceSuffix
}

// hasHashTag reports whether key's Redis Cluster hash slot is decided by a
// hash tag: a non-empty part between the first "{" and the next "}".
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}

// fenceReads gathers what the servers that granted an acquire read: the
// highest counter and the highest clock. The node goroutines add to it,
// possibly after the round returned.
type fenceReads struct {
	mu        sync.Mutex
	counter   uint64
	clock     uint64 // microseconds since 1970
	stored    uint64 // the token a single server agreed and stored itself
	crossSlot error  // a server refused the two keys as not in one slot
	// notCounter: a server's counter key holds something else.
	notCounter error
}

// token returns the token agreed by the reads so far: one more than the
// highest counter, or the highest clock if that is larger. stored reports
// that a single server agreed it and stored it already: it needs no
// write-back.
func (f *fenceReads) token() (t uint64, stored bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stored != 0 {
		return f.stored, true
	}
	t = f.counter + 1
	if f.clock > t {
		t = f.clock
	}
	return t, false
}

// failure returns the error that makes fencing impossible with this name
// on these servers, if a reply told one.
func (f *fenceReads) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crossSlot != nil {
		return f.crossSlot
	}
	return f.notCounter
}

// fencedAcquire is acquire with fencing: it sets the key on one server like
// acquire and, when it did, adds the server's counter and clock to reads.
func (m *Mutex) fencedAcquire(ctx context.Context, node int, pool redis.Pool, value string, afterWait bool, reads *fenceReads) (ok bool, ttl time.Duration, err error) {
	defer recoverPanic(&err)
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, -1, err
	}
	defer conn.Close()
	placeholder := ""
	if afterWait {
		placeholder = handoffMarker
	}
	var reply any
	if len(m.nodes.pools) == 1 {
		reply, err = conn.Eval(scripts.FencedAcquireOne, m.args.name, m.args.fenceKey, value, m.args.expiryMillis, placeholder, fenceCounterTTLMillis)
	} else {
		reply, err = conn.Eval(scripts.FencedAcquire, m.args.name, m.args.fenceKey, value, m.args.expiryMillis, placeholder)
	}
	if err != nil {
		if isCrossSlot(err) {
			reads.mu.Lock()
			reads.crossSlot = m.crossSlotError(err)
			reads.mu.Unlock()
		}
		return false, -1, err
	}
	got, err := scripts.ParseFencedAcquire(reply)
	switch {
	case err != nil:
		// An array: the key was set all the same; a failed server, which
		// the caller records as maybe holding the value.
		return false, -1, err
	case got.NotCounter:
		err := m.fenceKeyInUse(node)
		reads.mu.Lock()
		if reads.notCounter == nil {
			reads.notCounter = err
		}
		reads.mu.Unlock()
		return false, -1, err
	case !got.Acquired:
		return false, got.TTL, nil
	}
	reads.mu.Lock()
	if got.Stored != 0 {
		reads.stored = got.Stored
	}
	if got.Counter > reads.counter {
		reads.counter = got.Counter
	}
	if got.Clock > reads.clock {
		reads.clock = got.Clock
	}
	reads.mu.Unlock()
	return true, -1, nil
}

// writeBackToken stores token in the fencing counters of a quorum of the
// servers that hold value, before the acquisition may count. The write-back
// to a server waits for that server's acquire reply (hold's), so that it
// cannot overtake the acquire still on its way there and find no value.
func (m *Mutex) writeBackToken(ctx context.Context, value string, token uint64, hold *holding) roundResult {
	var valueArg, tokenArg any = value, strconv.FormatUint(token, 10)
	return m.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		hold.awaitReply(ctx, node)
		reply, err := m.eval(ctx, pool, scripts.FenceWriteBack, m.args.name, m.args.fenceKey, valueArg, tokenArg, fenceCounterTTLMillis)
		if err != nil {
			return false, err
		}
		// A reply the script never makes counts as not stored, without
		// an error of its own.
		status, unexpected := scripts.ParseFenceWriteBack(reply)
		if unexpected == nil && status == scripts.FenceWriteBackNotCounter {
			return false, m.fenceKeyInUse(node)
		}
		return unexpected == nil && status == scripts.FenceWriteBackStored, nil
	}, nil, skipAlways)
}

var fenceCounterTTLMillis any = fenceCounterTTL.Milliseconds()

// isCrossSlot reports whether err is a Redis Cluster's refusal of a
// command on keys of different hash slots.
func isCrossSlot(err error) bool {
	return err != nil && strings.Contains(err.Error(), "CROSSSLOT")
}

func (m *Mutex) crossSlotError(err error) error {
	return &ArgumentError{Arg: "name", Problem: fmt.Sprintf(
		"fencing keeps a counter in %q beside the lock key %q, and the Redis Cluster refused the two keys as not in one hash slot (%v); "+
			"a name with \"}\" needs a hash tag (a non-empty part between the first \"{\" and the next \"}\", as in \"{orders}:lock\")",
		m.args.fenceKey, m.name, err)}
}

// fenceKeyInUse is the error of server node, whose fencing counter key
// holds something that is not a counter.
func (m *Mutex) fenceKeyInUse(node int) error {
	return fmt.Errorf("%w: %q on node #%d holds a value that is not a counter (a lock of a Mutex of that name?), "+
		"and the counter is never written over it: lock a name whose counter key is free", ErrFenceKeyInUse, m.args.fenceKey, node)
}

// ErrTokenNotStored is wrapped by the error of a try, with fencing, that a
// quorum of servers granted but whose token fewer than a quorum stored
// (the key vanished from them in between, or they failed): the try does
// not count and is released, and Lock tries again as usual (and returns
// it when that was its last try).
var ErrTokenNotStored = errors.New("redsync: the fencing token was not stored by a quorum")
