package redsync

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

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

// fenceKey returns the key of name's fencing counter (see WithFencing).
func fenceKey(name string) string {
	return fencing.Key(name)
}

// fenceReads gathers, for one attempt with fencing, what the servers that
// granted the acquire read (see fencing.Reads); the node goroutines add to
// it, possibly after the round returned.
type fenceReads struct {
	fencing.Reads
}

// token returns the token agreed by the reads so far; stored reports that
// a single server agreed it and stored it already: it needs no write-back.
func (f *fenceReads) token() (t uint64, stored bool) {
	return f.Token()
}

// failure returns the error that makes fencing impossible with this name
// on these servers, if a reply told one.
func (f *fenceReads) failure() error {
	return f.Failure()
}

// fencedAcquire is acquire with fencing: it sets the key on one server like
// acquire (or queues, for attemptQueued) and, when it did, adds the
// server's counter and clock to reads.
func (m *Mutex) fencedAcquire(ctx context.Context, node int, pool redis.Pool, value string, kind attemptKind, ticket any, reads *fenceReads) (ok bool, ttl time.Duration, err error) {
	defer recoverPanic(&err)
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, -1, err
	}
	defer conn.Close()
	placeholder := ""
	if kind == attemptAfterWait {
		placeholder = handoffMarker
	}
	var reply any
	switch {
	case kind == attemptQueued:
		mode := "f"
		if len(m.nodes.pools) == 1 {
			mode = "1" // its own quorum: the script stores the token
		}
		reply, err = conn.Eval(scripts.AcquireQueued, m.args.name, m.args.queueKey, m.args.entriesKey, m.args.queueFenceKey, value, m.args.expiryMillis, ticket, m.args.leaseMillis, mode, fenceCounterTTLMillis)
	case len(m.nodes.pools) == 1:
		reply, err = conn.Eval(scripts.FencedAcquireOne, m.args.name, m.args.fenceKey, value, m.args.expiryMillis, placeholder, fenceCounterTTLMillis)
	default:
		reply, err = conn.Eval(scripts.FencedAcquire, m.args.name, m.args.fenceKey, value, m.args.expiryMillis, placeholder)
	}
	got := reads.Add(reply, err)
	switch got.Problem {
	case fencing.CrossSlot:
		// The server's refusal is its error; the attempt's says why.
		reads.Fail(fencing.CrossSlot, m.crossSlotError(got.Err))
	case fencing.KeyInUse:
		got.Err = m.fenceKeyInUse(node)
		reads.Fail(fencing.KeyInUse, got.Err)
	}
	// A failed server (got.Err), which the caller records as maybe
	// holding the value: an unexpected array reply means the key was set.
	return got.Acquired, got.TTL, got.Err
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
		stored, keyInUse := fencing.WriteBack(reply)
		if keyInUse {
			return false, m.fenceKeyInUse(node)
		}
		return stored, nil
	}, nil, skipAlways)
}

// fenceCounterTTLMillis is the counter's lifetime as a script argument,
// boxed once.
var fenceCounterTTLMillis any = fencing.CounterTTL.Milliseconds()

// crossSlotError is the error of a name whose lock key and counter key a
// Redis Cluster refused (err) as not in one hash slot.
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
