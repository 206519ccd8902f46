package scripts

import (
	_ "embed"
	"fmt"
)

// The scripts of an RWMutex. Every one takes
//
//	KEYS[1]  the lock key (the name): free, a writer's value, or the
//	         readers' mark while readers hold
//	KEYS[2]  the readers' hash, beside the lock key: reader value ->
//	         the server millisecond its entry ends; "redsync:writer" and
//	         "redsync:intent", the waiting writer's value and when its
//	         claim ends
//	ARGV[1]  the caller's value
//
// and, but for the release of a writer and RWValid, begins by dropping
// the entries that ended (rw_prune.lua). A reader enters only when the
// key is free or marked for readers and no writer waits; it sets the mark
// with an expiry at least its own entry's, so the mark outlives every
// live reader. A writer sets the key only when no reader lives; while
// readers live it claims the turn instead (reply 2), which keeps new
// readers out until the claim ends or it is released. The releases
// announce a freed key (or a claim given up) on the name's release
// channels, as Release does (publish.lua).

//go:embed rw_prune.lua
var rwPruneLua string

const rwPruneLine = "-- rw_prune.lua\n"

//go:embed rw_counter.lua
var rwCounterLua string

const rwCounterLine = "-- rw_counter.lua\n"

// withRW returns src with the RWMutex snippets it names in place.
func withRW(src string, counter bool) string {
	src = withSnippet(src, rwPruneLine, rwPruneLua)
	if counter {
		src = withSnippet(src, rwCounterLine, rwCounterLua)
	}
	return src
}

//go:embed rw_read_acquire.lua
var rwReadAcquireLua string

// RWReadAcquire admits a reader. KEYS[3] is the name's fencing counter,
// ARGV[2] the reader's expiry in milliseconds, ARGV[3] the readers' mark,
// ARGV[4] "1" to read the counter (fencing), "" not to. See
// ParseRWAcquire for its replies.
var RWReadAcquire = newScript(3, withRW(rwReadAcquireLua, true))

//go:embed rw_read_release.lua
var rwReadReleaseLua string

// RWReadRelease removes a reader; the last one frees the key and
// announces it on the classic channel ARGV[2] or the sharded ARGV[4]
// ("" for none; see publish.lua). ARGV[3] the readers' mark. Replies
// RWReleasedFreed when the reader was there and the key is free now,
// RWReleased when it was there and other readers hold, 0 otherwise.
var RWReadRelease = newScript(2, withRW(withPublish(rwReadReleaseLua), false))

//go:embed rw_write_acquire.lua
var rwWriteAcquireLua string

// RWWriteAcquire sets the key for a writer. KEYS[3] and ARGV[2] to
// ARGV[4] as RWReadAcquire's. See ParseRWAcquire for its replies:
// RWAdmitted when the key holds the writer's value (set now or before),
// RWClaimed when readers hold and the writer's turn is claimed.
var RWWriteAcquire = newScript(3, withRW(rwWriteAcquireLua, true))

//go:embed rw_write_release.lua
var rwWriteReleaseLua string

// RWWriteRelease deletes the writer's key and claim, and announces that
// it did on ARGV[2] and ARGV[4] as RWReadRelease does. Replies
// RWReleased when it found either, 0 otherwise.
var RWWriteRelease = newScript(2, withPublish(rwWriteReleaseLua))

//go:embed rw_read_extend.lua
var rwReadExtendLua string

// RWReadExtend resets a reader's entry to end after ARGV[2] milliseconds,
// and the mark (and the hash) to outlive it, if the entry is live and the
// key holds the mark ARGV[3]; all or nothing. Replies 1 extended, 0 not
// (the entry ended, or the key holds something else). A writer's hold is
// extended by Extend, on the lock key alone.
var RWReadExtend = newScript(2, withRW(rwReadExtendLua, false))

//go:embed rw_valid.lua
var rwValidLua string

// RWValid replies 1 when the key holds the value ARGV[1] (a writer), or
// holds the mark ARGV[2] and the value's reader entry is live; 0
// otherwise. It writes nothing.
var RWValid = newScript(2, rwValidLua)

// The codes of the RWMutex scripts.
const (
	RWRefused  = 0 // nothing done: refused, or not found
	RWAdmitted = 1 // acquire: admitted; release: released
	RWClaimed  = 2 // a writer's acquire: readers hold, its turn is claimed
	// RWReleased and RWReleasedFreed are RWReadRelease's: released, and
	// released with the key freed.
	RWReleased      = 1
	RWReleasedFreed = 2
)

// RWAcquireReply is a reply of RWReadAcquire or RWWriteAcquire.
type RWAcquireReply struct {
	// Code is RWRefused, RWAdmitted or RWClaimed.
	Code int64
	// NotCounter: the fencing counter key holds something that is not a
	// counter; nothing was admitted.
	NotCounter bool
	// Fenced: the counter was read (ARGV[4] "1") with an admission;
	// Counter is its value (0 when missing) and Clock the server's clock
	// in microseconds since 1970, read in the step that admitted.
	Fenced         bool
	Counter, Clock uint64
}

// ParseRWAcquire returns the reply of RWReadAcquire or RWWriteAcquire
// (name names it in the error), or an error for a reply neither makes.
func ParseRWAcquire(name string, reply any) (RWAcquireReply, error) {
	if n, ok := reply.(int64); ok {
		switch n {
		case notCounter:
			return RWAcquireReply{NotCounter: true}, nil
		case RWRefused, RWAdmitted, RWClaimed:
			return RWAcquireReply{Code: n}, nil
		}
	}
	if _, ok := reply.([]any); ok {
		counter, clock, err := parseCounterAndClock(reply)
		if err != nil {
			return RWAcquireReply{}, fmt.Errorf("scripts: %s: %w", name, err)
		}
		return RWAcquireReply{Code: RWAdmitted, Fenced: true, Counter: counter, Clock: clock}, nil
	}
	return RWAcquireReply{}, fmt.Errorf("scripts: %s: unexpected reply %v (%T)", name, reply, reply)
}

// ParseRW returns the code an RWMutex script other than the acquires
// replied (name names it in the error).
func ParseRW(name string, reply any) (int64, error) {
	n, ok := reply.(int64)
	if !ok || n < 0 || n > 2 {
		return 0, fmt.Errorf("scripts: %s: unexpected reply %v (%T)", name, reply, reply)
	}
	return n, nil
}
