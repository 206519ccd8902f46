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

// AcquireReply is a reply of AcquireAfterWait.
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
