package scripts

import (
	_ "embed"
	"fmt"
	"time"
)

//go:embed acquire_after_wait.lua
var acquireAfterWaitLua string

// AcquireAfterWait is the acquire of a waiter: it sets the lock key if it
// is missing or holds the hand-off placeholder (see Release), which
// redsync's SET NX would refuse.
//
//	KEYS[1]  the lock key
//	ARGV[1]  the value to set
//	ARGV[2]  the expiry, in milliseconds
//	ARGV[3]  the hand-off placeholder
//
// Reply: OK when it set the key, else the key's remaining time to live in
// milliseconds (PTTL: -1 when it has no expiry). See ParseAcquireAfterWait.
var AcquireAfterWait = newScript(1, acquireAfterWaitLua)

//go:embed acquire_queued.lua
var acquireQueuedLua string

// AcquireQueued is the acquire of a Lock that may wait, with the fleet
// queue: it sets the lock key when it is missing and no live waiter with
// a smaller ticket queues for it, refreshes it when it holds the value
// already (a release handed it over), and otherwise queues the value, or
// renews its lease in the queue, for a release to hand the key to it (see
// Release).
//
//	KEYS[1]  the lock key
//	KEYS[2]  the fleet queue (see Release)
//	KEYS[3]  the waiters' entries (see Release)
//	ARGV[1]  the value
//	ARGV[2]  the expiry, in milliseconds
//	ARGV[3]  the waiter's ticket: its place in the queue (smaller first;
//	         equal tickets by value)
//	ARGV[4]  the lease of its entry, in milliseconds
//	ARGV[5]  "" without fencing; "f" with fencing, "1" with fencing on a
//	         single server (see FencedAcquire and FencedAcquireOne)
//	ARGV[6]  with fencing, how long the counter lives, in milliseconds
//	KEYS[4]  with fencing, the fencing counter (else any key of the slot)
//
// An entry keeps the server time at which the value first queued; the
// queue's keys expire three leases after the last write. A server out of
// memory refuses to queue, and the acquire then only reports the key's
// time to live.
//
// A free key is also refused to every queued waiter during an outsiders'
// window that a release opened (see Release).
//
// With fencing the waiter's entry is marked, so that a release that hands
// it the key reads the counter for it (see Release), and a reply that
// holds the key is FencedAcquire's (counter and clock) or, on a single
// server, FencedAcquireOne's (the token, stored); a counter key in use
// is refused as there.
//
// Reply: OK when the key holds the value (set or refreshed), else the
// key's remaining time to live in milliseconds (in a window: the window's),
// or -1 when unknown (also when the key is free but a waiter ahead is to
// take it). See
// ParseAcquireAfterWait.
var AcquireQueued = newScript(4, acquireQueuedLua)

// AcquireReply is a reply of AcquireAfterWait or AcquireQueued.
type AcquireReply struct {
	// Acquired reports that the script set the key.
	Acquired bool
	// TTL is, when the key was not set, its remaining time to live, or -1
	// when unknown (the key has no expiry, or vanished).
	TTL time.Duration
}

// ParseAcquireAfterWait returns the reply of AcquireAfterWait, or an error
// for a reply of another type. A status reply other than OK counts as
// not acquired, with an unknown TTL.
func ParseAcquireAfterWait(reply any) (AcquireReply, error) {
	switch reply := reply.(type) {
	case int64:
		if reply < 0 {
			return AcquireReply{TTL: -1}, nil
		}
		return AcquireReply{TTL: time.Duration(reply) * time.Millisecond}, nil
	case string:
		return AcquireReply{Acquired: reply == "OK", TTL: -1}, nil
	case []byte:
		return AcquireReply{Acquired: string(reply) == "OK", TTL: -1}, nil
	}
	return AcquireReply{TTL: -1}, fmt.Errorf("redsync: unexpected reply %T to the acquire script", reply)
}
