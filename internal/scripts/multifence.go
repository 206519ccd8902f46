package scripts

import (
	_ "embed"
	"fmt"
)

// The fencing scripts of the MultiMutex and the Semaphore: the fenced
// forms of MultiAcquire and PermitAcquire, and the write-back of a token
// held under several keys. They read and write the counters as
// FencedAcquire and FenceWriteBack do (the same keys, the same rules), so
// that a fenced Mutex, MultiMutex and Semaphore order their tokens
// against each other wherever they share a counter.

// countersLine is the line of a script that countersLua replaces.
const countersLine = "-- counters.lua\n"

// countersLua defines highestCounter(first): the highest of the counters
// KEYS[first..] ("" when none exists), or nil when one of those keys
// holds something that is not a counter (a decimal number of at most 19
// digits). It writes nothing.
//
//go:embed counters.lua
var countersLua string

//go:embed fenced_multi_acquire.lua
var fencedMultiAcquireLua string

//go:embed fenced_permit_acquire.lua
var fencedPermitAcquireLua string

//go:embed multi_fence_write_back.lua
var multiFenceWriteBackLua string

// FencedMultiAcquire is MultiAcquire with fencing: in the step that sets
// every lock key (or none), it reads their fencing counters and the
// server's clock.
//
//	KEYS     the lock keys, then their fencing counter keys
//	ARGV[1]  the number of lock keys
//	ARGV[2]  the holder's value
//	ARGV[3]  the expiry, in milliseconds
//
// Replies (see ParseFencedMultiAcquire), when it set every key: the
// highest counter ("" when none exists) and the server's TIME, as
// FencedAcquire does; otherwise the 1-based index of the first lock key
// that exists, or -3, without setting anything, when a counter key holds
// something that is not a counter.
var FencedMultiAcquire = newScript(-1, withSnippet(fencedMultiAcquireLua, countersLine, countersLua))

// FencedPermitAcquire is PermitAcquire with fencing: in the step that sets
// the slots, it reads the semaphore's fencing counter and the server's
// clock.
//
//	KEYS     the semaphore's permit slots, then its fencing counter key
//	ARGV     as PermitAcquire's
//
// Replies (see ParseFencedPermitAcquire), when it set the slots: the
// counter ("" when missing), the server's TIME, then the 1-based slots;
// otherwise how many slots were free, or -3, without setting anything,
// when the counter key holds something that is not a counter.
var FencedPermitAcquire = newScript(-1, withSnippet(fencedPermitAcquireLua, countersLine, countersLua))

// MultiFenceWriteBack is FenceWriteBack for a holder of several keys: it
// raises every counter to the token if every lock key holds the holder's
// value, and keeps the counters alive.
//
//	KEYS     the lock keys, then the fencing counter keys
//	ARGV[1]  the number of lock keys
//	ARGV[2]  the holder's value
//	ARGV[3]  the token, in decimal
//	ARGV[4]  how long the counters live from now, in milliseconds
//
// Replies as FenceWriteBack (see ParseFenceWriteBack).
var MultiFenceWriteBack = newScript(-1, withSnippet(multiFenceWriteBackLua, countersLine, countersLua))

// FencedMultiReply is a reply of FencedMultiAcquire or FencedPermitAcquire.
type FencedMultiReply struct {
	// Acquired reports that the script set the keys; Counter and Clock
	// are then what it read (as FencedAcquireReply's).
	Acquired       bool
	Counter, Clock uint64
	// Refused is, when nothing was set, FencedMultiAcquire's index of the
	// first lock key that exists, or FencedPermitAcquire's count of free
	// slots.
	Refused int
	// NotCounter reports that a counter key holds something that is not a
	// counter: nothing was set.
	NotCounter bool
}

// ParseFencedMultiAcquire returns the reply of FencedMultiAcquire for
// keys lock keys, or an error for a reply it never makes (an error for an
// array means the keys were set all the same).
func ParseFencedMultiAcquire(reply any, keys int) (FencedMultiReply, error) {
	if n, ok := reply.(int64); ok {
		switch {
		case n == notCounter:
			return FencedMultiReply{NotCounter: true}, nil
		case n >= 1 && n <= int64(keys):
			return FencedMultiReply{Refused: int(n)}, nil
		}
		return FencedMultiReply{}, fmt.Errorf("redsync: unexpected reply %d to the fenced multi-key acquire script", n)
	}
	counter, clock, err := parseCounterAndClock(reply)
	if err != nil {
		return FencedMultiReply{}, err
	}
	return FencedMultiReply{Acquired: true, Counter: counter, Clock: clock}, nil
}

// ParseFencedPermitAcquire returns the reply of FencedPermitAcquire for
// slots permit slots and a weight of want, with the 0-based slots it set
// appended to dst; or an error for a reply it never makes (an error for an
// array means slots were set all the same).
func ParseFencedPermitAcquire(reply any, slots, want int, dst []int) (FencedMultiReply, []int, error) {
	switch r := reply.(type) {
	case int64:
		switch {
		case r == notCounter:
			return FencedMultiReply{NotCounter: true}, dst, nil
		case r >= 0 && r < int64(want):
			return FencedMultiReply{Refused: int(r)}, dst, nil
		}
	case []any:
		if len(r) != 3+want {
			break
		}
		counter, clock, err := parseCounterAndClock(r[:3])
		if err != nil {
			return FencedMultiReply{}, dst, err
		}
		set, _, err := ParsePermitAcquire(r[3:], slots, want, dst)
		if err != nil {
			return FencedMultiReply{}, dst, err
		}
		return FencedMultiReply{Acquired: true, Counter: counter, Clock: clock}, set, nil
	}
	return FencedMultiReply{}, dst, fmt.Errorf("redsync: unexpected reply %#v to the fenced permit acquire script", reply)
}
