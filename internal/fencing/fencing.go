// Package fencing agrees fencing tokens through the quorum that grants a
// lock. Every server keeps a counter beside the lock key (Key); the
// acquire script reads it, with the server's clock, in the step that sets
// the lock key (scripts.FencedAcquire). Reads gathers what the servers
// that granted read and gives the token: one more than the highest
// counter, or the highest clock in microseconds if that is larger. The
// token counts only once a quorum stored it back (scripts.FenceWriteBack).
// Why that makes tokens grow is argued in docs/fencing.md.
//
// The package decides what the servers' replies mean; the caller sends the
// scripts, counts the quorum and turns a Problem into an error of its own.
package fencing

import (
	"strings"
	"sync"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
)

// A Problem makes fencing impossible with a name on some server: no later
// try would do better.
type Problem int

const (
	// NoProblem: the reply says nothing against fencing.
	NoProblem Problem = iota
	// CrossSlot: a Redis Cluster refused the lock key and the counter key
	// as not in one hash slot (a name with "}" but no hash tag).
	CrossSlot
	// KeyInUse: the counter key holds something that is not a counter (a
	// lock of a name like the counter key, say); nothing was written.
	KeyInUse
)

// Acquire is what one server's reply to the fenced acquire means.
type Acquire struct {
	// Acquired reports that the server set the lock key.
	Acquired bool
	// TTL is, when the key was not set, its remaining time to live, or -1
	// when unknown.
	TTL time.Duration
	// Problem is what the reply tells against fencing, if anything.
	Problem Problem
	// Err is the server's failure: the call's error, or a reply the
	// scripts never make. Even then the key may have been set: a caller
	// that tracks what each server may hold counts it as set there.
	Err error
}

// Reads gathers what the servers that granted one acquire read: the
// highest counter and the highest clock, and the problems their replies
// told. Its methods may be called concurrently (from the goroutine of
// each server, also after the round that sent the acquire returned); the
// zero value is ready to use.
type Reads struct {
	mu      sync.Mutex // guards the fields below
	counter uint64
	clock   uint64 // microseconds since 1970
	stored  uint64 // the token a single server agreed and stored itself
	// crossSlot and keyInUse are the first errors given to Fail for
	// CrossSlot and KeyInUse.
	crossSlot, keyInUse error
}

// Add reads one server's reply to scripts.FencedAcquire or
// scripts.FencedAcquireOne, or the error of the call, and, when the
// server set the key, adds its counter and clock (or the token it stored)
// to the agreement. It returns what the reply means for that server.
func (r *Reads) Add(reply any, err error) Acquire {
	if err != nil {
		got := Acquire{TTL: -1, Err: err}
		if isCrossSlot(err) {
			got.Problem = CrossSlot
		}
		return got
	}
	got, err := scripts.ParseFencedAcquire(reply)
	switch {
	case err != nil:
		return Acquire{TTL: -1, Err: err}
	case got.NotCounter:
		return Acquire{TTL: -1, Problem: KeyInUse}
	case !got.Acquired:
		return Acquire{TTL: got.TTL}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if got.Stored != 0 {
		r.stored = got.Stored
	}
	r.counter = max(r.counter, got.Counter)
	r.clock = max(r.clock, got.Clock)
	return Acquire{Acquired: true, TTL: -1}
}

// AddFloor adds the floor that a server announced when it handed the key
// over to this acquire's value (one more than its counter, or its clock,
// read in the step that set the key; see scripts.Release) to the
// agreement.
func (r *Reads) AddFloor(floor uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clock = max(r.clock, floor)
}

// Fail records err as the error of problem p, which a reply told (see
// Acquire.Problem). Only the first error of each problem is kept.
func (r *Reads) Fail(p Problem, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case p == CrossSlot && r.crossSlot == nil:
		r.crossSlot = err
	case p == KeyInUse && r.keyInUse == nil:
		r.keyInUse = err
	}
}

// Failure returns the error that makes fencing impossible with this name
// on these servers, if Fail recorded one: a cross-slot refusal before a
// counter key in use, since a key in use on one server is only a symptom
// of a name the cluster cannot fence at all.
func (r *Reads) Failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.crossSlot != nil {
		return r.crossSlot
	}
	return r.keyInUse
}

// Token returns the token agreed by the reads so far: one more than the
// highest counter, or the highest clock if that is larger (a server that
// restarted empty has lost its counter, not its clock). stored reports
// that a single server, its own quorum, agreed the token and stored it
// already: it needs no write-back.
func (r *Reads) Token() (token uint64, stored bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stored != 0 {
		return r.stored, true
	}
	return max(r.counter+1, r.clock), false
}

// WriteBack reads one server's reply to scripts.FenceWriteBack: stored
// reports that the server's counter is now at least the token, keyInUse
// that the counter key holds something that is not a counter. A reply the
// script never makes counts as not stored, with no problem of its own.
func WriteBack(reply any) (stored, keyInUse bool) {
	status, err := scripts.ParseFenceWriteBack(reply)
	if err != nil {
		return false, false
	}
	return status == scripts.FenceWriteBackStored, status == scripts.FenceWriteBackNotCounter
}

// isCrossSlot reports whether err is a Redis Cluster's refusal of a
// command on keys of different hash slots.
func isCrossSlot(err error) bool {
	return strings.Contains(err.Error(), "CROSSSLOT")
}
