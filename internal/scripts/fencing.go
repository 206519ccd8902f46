package scripts

import (
	_ "embed"
	"fmt"
	"strconv"
	"time"
)

// readCounterLua begins the fencing scripts, which read the fencing
// counter KEYS[2]: it reads it into counter ("" when missing), and makes
// the script reply notCounter, before it writes anything, when the key
// holds something that is not a counter (a decimal number of at most 19
// digits): a lock of a Mutex named like the counter key, say, which the
// counter must never overwrite.
//
//go:embed read_counter.lua
var readCounterLua string

// notCounter is the reply of the fencing scripts when the counter key
// holds something that is not a counter (see readCounterLua).
const notCounter = -3

//go:embed fenced_acquire.lua
var fencedAcquireLua string

//go:embed fenced_acquire_one.lua
var fencedAcquireOneLua string

//go:embed fence_write_back.lua
var fenceWriteBackLua string

// FencedAcquire is the acquire with fencing on one of several servers: it
// sets the lock key like SET NX, and reads the fencing counter and the
// server's clock in the same step.
//
//	KEYS[1]  the lock key
//	KEYS[2]  the fencing counter key
//	ARGV[1]  the value to set
//	ARGV[2]  the expiry, in milliseconds
//	ARGV[3]  the hand-off placeholder, which the key may hold too, or ""
//	         for an acquire that takes only a missing key
//
// Reply (see ParseFencedAcquire), when it set the key: the counter ("" when
// missing) and the server's TIME (seconds, microseconds), as strings;
// otherwise the key's remaining time to live in milliseconds (-1 when it
// has no expiry), or -3 without setting anything when the counter key
// holds something that is not a counter. TIME comes after the only write,
// as old servers require of scripts.
var FencedAcquire = newScript(2, withReadCounter(fencedAcquireLua))

// FencedAcquireOne is FencedAcquire for a single server, which is its own
// quorum: when it sets the key it also agrees the token (the larger of the
// counter plus one and the clock in microseconds) and stores it in the
// counter, saving the write-back round.
//
//	KEYS and ARGV[1] to ARGV[3] as FencedAcquire's
//	ARGV[4]  how long the counter lives, in milliseconds
//
// Reply (see ParseFencedAcquire), when it set the key: the token, an
// array of one integer; otherwise as FencedAcquire's.
// redis.replicate_commands lets a script write after TIME on servers
// before Redis 5 (later servers always allow it).
var FencedAcquireOne = newScript(2, withReadCounter(fencedAcquireOneLua))

// FenceWriteBack raises the fencing counter to the agreed token if the
// lock key holds the holder's value, and keeps the counter alive.
//
//	KEYS[1]  the lock key
//	KEYS[2]  the fencing counter key
//	ARGV[1]  the holder's value
//	ARGV[2]  the token, in decimal
//	ARGV[3]  how long the counter lives from now, in milliseconds
//
// Replies (see ParseFenceWriteBack): FenceWriteBackStored (the counter is
// at least the token), FenceWriteBackNotHeld (the key is missing or holds
// another value), FenceWriteBackNotCounter (nothing written).
var FenceWriteBack = newScript(2, withReadCounter(fenceWriteBackLua))

// FencedAcquireReply is a reply of FencedAcquire or FencedAcquireOne.
type FencedAcquireReply struct {
	// Acquired reports that the script set the key.
	Acquired bool
	// TTL is, when the key was not set, its remaining time to live, or -1
	// when unknown.
	TTL time.Duration
	// NotCounter reports that the counter key holds something that is not
	// a counter: nothing was set.
	NotCounter bool
	// Stored is the token FencedAcquireOne agreed and stored (0 from
	// FencedAcquire).
	Stored uint64
	// Counter is the counter FencedAcquire read (0 when missing or not a
	// number: the clock still gives a floor), and Clock the server's clock
	// in microseconds since 1970.
	Counter, Clock uint64
}

// ParseFencedAcquire returns the reply of FencedAcquire or
// FencedAcquireOne, or an error for a reply neither makes. An error for an
// array means the key was set all the same.
func ParseFencedAcquire(reply any) (FencedAcquireReply, error) {
	if ttl, ok := reply.(int64); ok {
		switch {
		case ttl == notCounter:
			return FencedAcquireReply{TTL: -1, NotCounter: true}, nil
		case ttl < 0:
			return FencedAcquireReply{TTL: -1}, nil
		}
		return FencedAcquireReply{TTL: time.Duration(ttl) * time.Millisecond}, nil
	}
	if items, ok := reply.([]any); ok && len(items) == 1 {
		token, ok := items[0].(int64)
		if !ok || token <= 0 {
			return FencedAcquireReply{TTL: -1}, fmt.Errorf("redsync: unexpected reply %v to the fenced acquire script", items)
		}
		return FencedAcquireReply{Acquired: true, TTL: -1, Stored: uint64(token)}, nil
	}
	counter, clock, err := parseCounterAndClock(reply)
	if err != nil {
		return FencedAcquireReply{TTL: -1}, err
	}
	return FencedAcquireReply{Acquired: true, TTL: -1, Counter: counter, Clock: clock}, nil
}

// parseCounterAndClock reads the reply of FencedAcquire that set the key.
func parseCounterAndClock(reply any) (counter, clock uint64, err error) {
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

// FenceWriteBackReply is a reply of FenceWriteBack.
type FenceWriteBackReply int64

// The replies of FenceWriteBack.
const (
	// FenceWriteBackNotCounter: the counter key holds something that is
	// not a counter; nothing was written.
	FenceWriteBackNotCounter FenceWriteBackReply = notCounter
	// FenceWriteBackNotHeld: the lock key is missing or holds another
	// value; nothing was written.
	FenceWriteBackNotHeld FenceWriteBackReply = 0
	// FenceWriteBackStored: the counter is at least the token.
	FenceWriteBackStored FenceWriteBackReply = 1
)

// ParseFenceWriteBack returns the reply of FenceWriteBack, or an error for
// a reply FenceWriteBack never makes.
func ParseFenceWriteBack(reply any) (FenceWriteBackReply, error) {
	if n, ok := reply.(int64); ok {
		switch r := FenceWriteBackReply(n); r {
		case FenceWriteBackNotCounter, FenceWriteBackNotHeld, FenceWriteBackStored:
			return r, nil
		}
	}
	return 0, fmt.Errorf("redsync: unexpected reply %#v to the fence write-back script", reply)
}
