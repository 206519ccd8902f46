//go:build linux

package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// A Holding is one acquisition of a lock, as its holder saw it. Times are
// CLOCK_MONOTONIC nanoseconds.
type Holding struct {
	Name   string `json:"name"`
	Client int    `json:"client"` // the client process, 0-based
	Worker int    `json:"worker"` // the goroutine within the client
	Seq    int    `json:"seq"`    // the worker's acquisitions, counted from 1
	Value  string `json:"value"`  // the lock value (Mutex.Value)
	Mode   string `json:"mode"`   // how it held: ModePlain, ModeExtend or ModeKeepAlive
	// Kind is the primitive that held: "" (KindMutex) for a Mutex, or
	// one of the other Kind constants (see prims.go).
	Kind string `json:"kind,omitempty"`
	// Names are the names a MultiMutex held, in the order it gave them
	// (Name is then their first).
	Names []string `json:"names,omitempty"`
	// Weight and Permits are a Semaphore lease's weight and its
	// semaphore's permits.
	Weight  int `json:"weight,omitempty"`
	Permits int `json:"permits,omitempty"`
	// Shared is set for an RWMutex read lock (RLock), unset for its write
	// lock.
	Shared bool `json:"shared,omitempty"`

	ExpiryMS int64 `json:"expiry_ms"`
	// LockStart is when the holder called Lock, and Acquired when Lock
	// returned: the acquisition happened in between. A pause of the
	// process can only widen the interval. LockStart is 0 in records that
	// predate it.
	LockStart int64 `json:"lock_start,omitempty"`
	Acquired  int64 `json:"acquired"`
	// Until is the Until that Lock set, as the holder believes it: under
	// FaultClientClockSlow, when its slow clock passes it (see
	// clientClock), and HostUntil is then the library's Until.
	Until     int64 `json:"until"`
	HostUntil int64 `json:"host_until,omitempty"`
	// Extensions are the Untils that extensions set later, in order, as
	// the holder believes them.
	Extensions []Extension `json:"ext,omitempty"`
	// Released is when Unlock was called, UnlockDone when it returned;
	// 0 if it was not called. For an Election leader, Released is when
	// Resign was called or, if earlier, when the Election's Mutex reported
	// the leadership lost (the Election then releases the lock itself).
	Released   int64  `json:"released,omitempty"`
	UnlockDone int64  `json:"unlock_done,omitempty"`
	UnlockErr  string `json:"unlock_err,omitempty"`
	// Lost tells how the holder found out it no longer held the lock
	// before it unlocked; nil when it held until Unlock.
	Lost *Loss `json:"lost,omitempty"`
	// Token is the fencing token of the acquisition (Mutex.Token), and
	// an Election leader's term (Election.Term); nil when the holder did
	// not use fencing.
	Token *uint64 `json:"token,omitempty"`
	// HandedOver is set when the acquisition was a hand-over: a release
	// set the key to this holder's value (redsync.AttemptEvent.HandedOver).
	HandedOver bool `json:"handed_over,omitempty"`
}

// Modes of holding a lock.
const (
	ModePlain     = "plain"     // Lock, work shorter than the expiry, Unlock
	ModeExtend    = "extend"    // Lock, Extend every third of the expiry, Unlock
	ModeKeepAlive = "keepalive" // Lock, KeepAlive, work until its context ends or done, Unlock
)

// An Extension is a successful extension as the holder saw it.
type Extension struct {
	// At is when the holder saw the new Until: when Extend returned, or
	// when it noticed that KeepAlive had moved Until.
	At    int64 `json:"at"`
	Until int64 `json:"until"`
}

// A Loss is how a holder found out that its lock was gone.
type Loss struct {
	// At is when the holder noticed.
	At int64 `json:"at"`
	// Reason is LossExpired (Until had passed) or LossContext (the
	// KeepAlive context ended first).
	Reason string `json:"reason"`
	// CtxDone is when the KeepAlive context ended: the earlier of when the
	// holder saw it done and when a goroutine started by its end
	// (context.AfterFunc) ran, both bounds from above; 0 when it did not
	// end (or the holder did not use KeepAlive, or KeepAlive refused
	// because the validity was already over).
	CtxDone int64 `json:"ctx_done,omitempty"`
	// Cause is context.Cause of the KeepAlive context, and CauseLockLost
	// whether it matches redsync.ErrLockLost.
	Cause         string `json:"cause,omitempty"`
	CauseLockLost bool   `json:"cause_lock_lost,omitempty"`
}

// Reasons of a Loss.
const (
	LossExpired = "expired" // the holder saw Until pass
	LossContext = "context" // the KeepAlive context ended before Until
)

// Window returns the intervals [from, to) in which the holder had the
// lock by its own account: from Lock's return to Until, and on to each
// later Until that an extension set. An extension seen after the previous
// Until had passed starts a new interval where it was seen: in between, the
// holder knew it did not hold the lock. Nothing counts after Unlock was
// called.
func (h *Holding) Window() [][2]int64 {
	var out [][2]int64
	from, to := h.Acquired, h.Until
	for _, e := range h.Extensions {
		if e.At <= to {
			if e.Until > to {
				to = e.Until
			}
			continue
		}
		out = append(out, [2]int64{from, to})
		from, to = e.At, e.Until
	}
	out = append(out, [2]int64{from, to})
	if h.Released == 0 {
		return dropEmpty(out)
	}
	for i := range out {
		if out[i][1] > h.Released {
			out[i][1] = h.Released
		}
	}
	return dropEmpty(out)
}

func dropEmpty(in [][2]int64) [][2]int64 {
	out := in[:0]
	for _, iv := range in {
		if iv[1] > iv[0] {
			out = append(out, iv)
		}
	}
	return out
}

// End returns when the holder's last interval ends (0 if it had none).
func (h *Holding) End() int64 {
	w := h.Window()
	if len(w) == 0 {
		return 0
	}
	return w[len(w)-1][1]
}

// A ClientSummary is what a client process reports when it exits.
type ClientSummary struct {
	Client int `json:"client"`
	Pid    int `json:"pid"`

	LockCalls    int64 `json:"lock_calls"`
	Acquired     int64 `json:"acquired"`
	LockFailed   int64 `json:"lock_failed"`
	ExtendCalls  int64 `json:"extend_calls"`
	ExtendFailed int64 `json:"extend_failed"`
	Unlocks      int64 `json:"unlocks"`
	UnlockFailed int64 `json:"unlock_failed"`
	KeepAlives   int64 `json:"keepalives"`
	// HandedOver counts the acquisitions that took a hand-over from an
	// Unlock, of this client or another (redsync.AttemptEvent.HandedOver).
	HandedOver int64 `json:"handed_over"`
	// NotSent counts the requests not sent to a backlogged server
	// (redsync.ErrBacklogged).
	NotSent int64 `json:"not_sent"`
	// Prims counts the operations of the other primitives, by Kind; the
	// counters above are the Mutex holders'.
	Prims map[string]*PrimOps `json:"prims,omitempty"`

	// WaitSeconds is how long Redsync.Wait took at exit.
	WaitSeconds float64 `json:"wait_seconds"`
	// WaitStuck is set when Redsync.Wait did not return in time; the
	// goroutines are then in Leaks.
	WaitStuck bool `json:"wait_stuck,omitempty"`
	// LeakedGoroutines counts the goroutines still running after Wait and
	// closing the clients that were not there before the client started;
	// Leaks has their stacks.
	LeakedGoroutines int    `json:"leaked_goroutines"`
	Leaks            string `json:"leaks,omitempty"`

	// Errors are unexpected errors (bad arguments, failed writes), not
	// the lock errors that faults cause.
	Errors []string `json:"errors,omitempty"`
}

// jsonLines appends values to a file as JSON lines; safe for concurrent
// use.
type jsonLines struct {
	mu  sync.Mutex // guards w and err
	f   *os.File
	w   *bufio.Writer
	err error
}

func createJSONLines(path string) (*jsonLines, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &jsonLines{f: f, w: bufio.NewWriterSize(f, 1<<16)}, nil
}

func (j *jsonLines) write(v any) {
	b, err := json.Marshal(v)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err == nil {
		b = append(b, '\n')
		_, err = j.w.Write(b)
	}
	if err != nil && j.err == nil {
		j.err = err
	}
}

// close flushes and closes the file and returns the first error.
func (j *jsonLines) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.w.Flush(); err != nil && j.err == nil {
		j.err = err
	}
	if err := j.f.Close(); err != nil && j.err == nil {
		j.err = err
	}
	return j.err
}

// readJSONLines decodes every line of path into a new T and calls fn.
func readJSONLines[T any](path string, fn func(T)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<16))
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("faults: reading %s: %w", path, err)
		}
		fn(v)
	}
}
