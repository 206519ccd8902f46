package redsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

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
		m.fencing = enabled
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
	return m.token
}

// WithToken gives the Mutex the fencing token of a lock taken elsewhere,
// whose value WithValue gives it: Token returns it until the Mutex's next
// acquisition, so that a process the lock was handed to writes with the
// token of that lock. It has no other effect.
func WithToken(token uint64) Option {
	return OptionFunc(func(m *Mutex) {
		m.token = token
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

// readCounterLua begins the scripts that read the fencing counter KEYS[2]:
// it reads it into counter ("" when missing), and makes the script reply
// replyNotCounter, before it writes anything, when the key holds something
// that is not a counter (a decimal number of at most 19 digits): a lock of
// a Mutex named like the counter key, say, which the counter must never
// overwrite.
const readCounterLua = `
local counter = ""
local kind = redis.call("TYPE", KEYS[2])["ok"]
if kind == "string" then
	counter = redis.call("GET", KEYS[2])
end
if kind ~= "none" and (kind ~= "string" or #counter > 19 or not string.find(counter, "^%d+$")) then
	return -3
end
`

// replyNotCounter is the reply of the fencing scripts when the counter key
// holds something that is not a counter (see readCounterLua).
const replyNotCounter = int64(-3)

// fencedAcquireScript sets KEYS[1] to ARGV[1] for ARGV[2] milliseconds if
// the key is missing, or holds the hand-off placeholder ARGV[3] when
// ARGV[3] is not empty. When it sets the key it replies with the fencing
// counter KEYS[2] ("" when missing) and the server's TIME (seconds,
// microseconds), read in the same step; otherwise with the key's
// remaining time to live in milliseconds (-1 when it has no expiry), or
// replyNotCounter without setting anything (see readCounterLua).
// TIME comes after the only write, as old servers require of scripts.
var fencedAcquireScript = newScript(2, readCounterLua+`
local current = redis.call("GET", KEYS[1])
if current == false or (ARGV[3] ~= "" and current == ARGV[3]) then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	local now = redis.call("TIME")
	return {counter, now[1], now[2]}
end
return redis.call("PTTL", KEYS[1])
`)

// fencedAcquireOneScript is fencedAcquireScript for a single server,
// which is its own quorum: when it sets the key it also agrees the token
// and stores it in KEYS[2] for ARGV[4] milliseconds, and replies with it
// (an array of one integer), saving the write-back round.
// replicate_commands lets a script write after TIME on servers before
// Redis 5 (later servers always allow it).
var fencedAcquireOneScript = newScript(2, `
redis.replicate_commands()
`+readCounterLua+`
local current = redis.call("GET", KEYS[1])
if current == false or (ARGV[3] ~= "" and current == ARGV[3]) then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	local now = redis.call("TIME")
	local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
	local stored = tonumber(counter)
	if stored ~= nil and stored >= token then
		token = stored + 1
	end
	redis.call("SET", KEYS[2], string.format("%.0f", token), "PX", ARGV[4])
	return {token}
end
return redis.call("PTTL", KEYS[1])
`)

// fenceWriteBackScript raises the fencing counter KEYS[2] to ARGV[2] if
// KEYS[1] holds ARGV[1], and keeps the counter ARGV[3] milliseconds from
// now. Reply: 1 stored (the counter is at least ARGV[2]), 0 the key holds
// another value or is missing, replyNotCounter nothing written (see
// readCounterLua).
var fenceWriteBackScript = newScript(2, readCounterLua+`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
if counter == "" or tonumber(counter) < tonumber(ARGV[2]) then
	redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3])
else
	redis.call("PEXPIRE", KEYS[2], ARGV[3])
end
return 1
`)

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
	if len(m.pools) == 1 {
		reply, err = conn.Eval(fencedAcquireOneScript, m.args.name, m.args.fenceKey, value, m.args.expiryMillis, placeholder, fenceCounterTTLMillis)
	} else {
		reply, err = conn.Eval(fencedAcquireScript, m.args.name, m.args.fenceKey, value, m.args.expiryMillis, placeholder)
	}
	if err != nil {
		if isCrossSlot(err) {
			reads.mu.Lock()
			reads.crossSlot = m.crossSlotError(err)
			reads.mu.Unlock()
		}
		return false, -1, err
	}
	if ttl, ok := reply.(int64); ok {
		if ttl == replyNotCounter {
			err := m.fenceKeyInUse(node)
			reads.mu.Lock()
			if reads.notCounter == nil {
				reads.notCounter = err
			}
			reads.mu.Unlock()
			return false, -1, err
		}
		if ttl < 0 {
			return false, -1, nil
		}
		return false, time.Duration(ttl) * time.Millisecond, nil
	}
	if items, ok := reply.([]any); ok && len(items) == 1 {
		token, ok := items[0].(int64)
		if !ok || token <= 0 {
			return false, -1, fmt.Errorf("redsync: unexpected reply %v to the fenced acquire script", items)
		}
		reads.mu.Lock()
		reads.stored = uint64(token)
		reads.mu.Unlock()
		return true, -1, nil
	}
	counter, clock, err := parseFenceReply(reply)
	if err != nil {
		// The key was set all the same: a failed server, which the caller
		// records as maybe holding the value.
		return false, -1, err
	}
	reads.mu.Lock()
	if counter > reads.counter {
		reads.counter = counter
	}
	if clock > reads.clock {
		reads.clock = clock
	}
	reads.mu.Unlock()
	return true, -1, nil
}

// parseFenceReply reads the reply of fencedAcquireScript that set the key.
func parseFenceReply(reply any) (counter, clock uint64, err error) {
	items, ok := reply.([]any)
	if !ok || len(items) != 3 {
		return 0, 0, fmt.Errorf("redsync: unexpected reply %T to the fenced acquire script", reply)
	}
	var n [3]uint64
	for i, item := range items {
		var s string
		switch item := item.(type) {
		case string:
			s = item
		case []byte:
			s = string(item)
		default:
			return 0, 0, fmt.Errorf("redsync: unexpected %T in the reply to the fenced acquire script", item)
		}
		if s == "" && i == 0 {
			continue // no counter yet
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			if i == 0 {
				// A counter key overwritten by somebody else: the clock
				// still gives a floor.
				continue
			}
			return 0, 0, fmt.Errorf("redsync: unreadable number %q in the reply to the fenced acquire script", s)
		}
		n[i] = v
	}
	return n[0], n[1]*1e6 + n[2], nil
}

// writeBackToken stores token in the fencing counters of a quorum of the
// servers that hold value, before the acquisition may count. The write-back
// to a server waits for that server's acquire reply (hold's), so that it
// cannot overtake the acquire still on its way there and find no value.
func (m *Mutex) writeBackToken(ctx context.Context, value string, token uint64, hold *holding) roundResult {
	var valueArg, tokenArg any = value, strconv.FormatUint(token, 10)
	return m.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		hold.awaitReply(ctx, node)
		status, err := m.eval(ctx, pool, fenceWriteBackScript, m.args.name, m.args.fenceKey, valueArg, tokenArg, fenceCounterTTLMillis)
		if err == nil && status == replyNotCounter {
			err = m.fenceKeyInUse(node)
		}
		return err == nil && status == int64(1), err
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
