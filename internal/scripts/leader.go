package scripts

import (
	_ "embed"
	"fmt"
	"strconv"
)

//go:embed proclaim.lua
var proclaimLua string

// Proclaim writes an election's leader record beside the lock key, if the
// lock key holds the leader's lock value, and announces it.
//
//	KEYS[1]  the lock key (the election's name)
//	KEYS[2]  the leader record: a hash of lock, term, seq, value; it is
//	         also the channel the record is announced on
//	ARGV[1]  the leader's lock value
//	ARGV[2]  the leader's term (its fencing token)
//	ARGV[3]  the record's sequence number within the term (each Proclaim
//	         of the term writes a larger one)
//	ARGV[4]  the proclaimed value
//	ARGV[5]  the record's lifetime, in milliseconds
//
// Replies 1 when the record was written (and the term published on
// KEYS[2]), 0 when the lock key holds another value or none: the caller
// does not lead there.
var Proclaim = newScript(2, proclaimLua)

//go:embed read_leader.lua
var readLeaderLua string

// ReadLeader reads, on one server, the lock key of an election, its
// remaining time to live and the leader record (see Proclaim). It writes
// nothing.
//
//	KEYS[1]  the lock key
//	KEYS[2]  the leader record
//
// Reply (see ParseReadLeader): the lock value or nil, PTTL, and the
// record's lock, term, seq and value fields, each nil when missing.
var ReadLeader = newScript(2, readLeaderLua)

// LeaderRead is what ReadLeader found on one server.
type LeaderRead struct {
	Lock string // the lock key's value; "" when the key is missing
	TTL  int64  // its time to live in milliseconds (PTTL: -2 missing, -1 no expiry)
	// The record: the lock value it was written for ("" when there is
	// no record), the term, the sequence number and the value.
	RecordLock string
	Term       uint64
	Seq        uint64
	Value      string
}

// ParseProclaim returns whether Proclaim wrote the record.
func ParseProclaim(reply any) (bool, error) {
	n, ok := reply.(int64)
	if !ok || (n != 0 && n != 1) {
		return false, fmt.Errorf("scripts: proclaim: unexpected reply %v (%T)", reply, reply)
	}
	return n == 1, nil
}

// ParseReadLeader parses the reply of ReadLeader.
func ParseReadLeader(reply any) (LeaderRead, error) {
	var r LeaderRead
	a, ok := reply.([]any)
	if !ok || len(a) != 6 {
		return r, fmt.Errorf("scripts: read_leader: unexpected reply %v (%T)", reply, reply)
	}
	fields := make([]string, 6)
	for i, v := range a {
		switch v := v.(type) {
		case nil:
		case string:
			fields[i] = v
		case []byte:
			fields[i] = string(v)
		case int64:
			fields[i] = strconv.FormatInt(v, 10)
		default:
			return r, fmt.Errorf("scripts: read_leader: unexpected field %d: %v (%T)", i, v, v)
		}
	}
	ttl, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return r, fmt.Errorf("scripts: read_leader: unexpected TTL %q", fields[1])
	}
	r.Lock, r.TTL, r.RecordLock, r.Value = fields[0], ttl, fields[2], fields[5]
	if r.RecordLock == "" {
		return r, nil
	}
	if r.Term, err = strconv.ParseUint(fields[3], 10, 64); err != nil {
		return r, fmt.Errorf("scripts: read_leader: unexpected term %q", fields[3])
	}
	if r.Seq, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return r, fmt.Errorf("scripts: read_leader: unexpected seq %q", fields[4])
	}
	return r, nil
}
