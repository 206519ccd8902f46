package redsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// A MultiMutex locks several names at once, all of them or none: it holds
// the lock when a quorum of the servers given to New store its value under
// every name. The names are Mutex names (the same keys), so a Mutex, or
// redsync, on one of the names excludes the MultiMutex and is excluded by
// it.
//
// Safety and liveness. On each server one script sets every key, with NX
// semantics, or none of them (MultiAcquire), so the keys of one server are
// taken atomically. Each name is then a Redlock key held by the value on a
// quorum: two holders of a common name would need two quorums that
// intersect in a server holding two values under one key, which it cannot
// (the Mutex's argument, per name). An attempt that falls short of a
// quorum, or whose validity is used up, releases every server it may have
// set (also those whose replies come after it gave up) before the next
// attempt. No attempt ever waits while it holds a key, so callers that list
// the names in different orders cannot deadlock: each attempt either gets
// all names or none and gives back what it got; competing attempts may
// fail together, and the random retry delay makes that unlikely to repeat.
//
// On a Redis Cluster (a Pool over a cluster counts as one server), names in
// one hash slot cost one script per server; a cluster that refuses keys of
// several slots (CROSSSLOT) gets one script per slot from then on (only the
// first request refused costs a round trip), in slot order, and a refusal
// of any slot releases the slots set before it on that cluster: the server
// counts as refusing, so the attempt stays all or nothing.
//
// Waiting: Lock tries up to the tries of WithTries. A failed try waits for
// the retry delay (WithRetryDelay), or less: with hand-off (the default)
// and pools that can subscribe, a release of any of the names, announced
// by a quorum of servers or made in this process, wakes it to try again
// at once. It watches the names' release channels without taking a turn
// among the names' other waiters: it holds none of them back, and gets no
// hand-over (a Mutex's Unlock hands a name to a waiting Mutex first).
//
// Fencing (WithFencing): each acquisition gets a token (Token), agreed as
// the Mutex's is (docs/fencing.md) from the names' own fencing counters,
// the keys a fenced Mutex of each name uses, and the servers' clocks: the
// acquire script of each server reads every name's counter in the step
// that sets the names, the token is one more than the highest counter
// read (or the highest clock), and it is stored back into every name's
// counter on a quorum, on each server only while all the names there still
// hold the value, before Lock returns. The Mutex's argument, name by name,
// makes the token larger than that of every earlier fenced holder, Mutex
// or MultiMutex, of any of the names.
//
// Names, Value and Until may be called from any goroutine; a MultiMutex
// stands for one holder, like a Mutex. WithValue and WithSetNXOnExtend are
// not supported (an *ArgumentError).
type MultiMutex struct {
	names []string
	// counters are the names' fencing counter keys (fencing.Key), with
	// WithFencing; nil without.
	counters []string
	invalid  error
	lease    keyLease
}

// NewMultiMutex returns a MultiMutex for names, configured by options (the
// Mutex's options). No names, an empty name, or a name given twice are
// reported by its first operation as an *ArgumentError, as are bad or
// unsupported options.
func (r *Redsync) NewMultiMutex(names []string, options ...Option) *MultiMutex {
	names = append([]string(nil), names...)
	first := ""
	if len(names) > 0 {
		first = names[0]
	}
	t := r.NewMutex(first, options...)
	mm := &MultiMutex{names: names, invalid: checkNames(names)}
	if mm.invalid == nil {
		mm.invalid = keySetOptions(t, "a MultiMutex")
	}
	mm.lease = keyLease{s: keyServers{t: t, split: make([]atomic.Bool, len(t.nodes.pools))}, name: strings.Join(names, ","), keys: names, releaseOp: OpMultiUnlock}
	if t.cfg.fencing {
		mm.counters = make([]string, len(names))
		for i, name := range names {
			mm.counters[i] = fencing.Key(name)
		}
	}
	return mm
}

// checkNames reports what is wrong with the names of a MultiMutex.
func checkNames(names []string) error {
	if len(names) == 0 {
		return &ArgumentError{Arg: "names", Problem: "NewMultiMutex was given no names; pass the names to lock together"}
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if n == "" {
			return &ArgumentError{Arg: "names", Problem: fmt.Sprintf("name %d is empty; a name is the key that holds its lock", i)}
		}
		if seen[n] {
			return &ArgumentError{Arg: "names", Problem: fmt.Sprintf("%q is given twice", n)}
		}
		seen[n] = true
	}
	return nil
}

// Names returns the names the MultiMutex locks, in the order given.
func (mm *MultiMutex) Names() []string { return append([]string(nil), mm.names...) }

// Value returns the value that marks the locks as this MultiMutex's: ""
// until it is locked.
func (mm *MultiMutex) Value() string {
	mm.lease.mu.Lock()
	defer mm.lease.mu.Unlock()
	return mm.lease.value
}

// Token returns the fencing token of the MultiMutex's last successful
// Lock or TryLock with WithFencing: larger than the token of every
// earlier holder, fenced MultiMutex or fenced Mutex, of any of its names
// (see the type's comment); 0 before the first and without fencing. It
// keeps its value after Unlock, as Value does.
func (mm *MultiMutex) Token() uint64 { return mm.lease.tokenOf() }

// Until returns the time until which every name is held for sure (see
// Mutex.Until); the zero time until locked.
func (mm *MultiMutex) Until() time.Time { return mm.lease.untilTime() }

// Lock is LockContext with context.Background().
func (mm *MultiMutex) Lock() error { return mm.LockContext(context.Background()) }

// TryLock is TryLockContext with context.Background().
func (mm *MultiMutex) TryLock() error { return mm.TryLockContext(context.Background()) }

// LockContext locks every name, trying up to the tries of WithTries (32 by
// default) with the retry delay between them, until it holds them all or
// ctx ends. It returns nil when locked; otherwise an error matching
// ErrFailed (and ctx.Err() when ctx ended) joined with the last attempt's
// (an *ErrTaken when a quorum refused). A failed or cancelled LockContext
// leaves nothing on the servers: what an attempt set is released, also
// where its reply comes later. LockContext on a MultiMutex that holds its
// names returns an *ArgumentError; after Unlock it may lock again.
func (mm *MultiMutex) LockContext(ctx context.Context) error {
	return mm.lock(ctx, mm.lease.s.t.cfg.tries)
}

// TryLockContext is LockContext with one try.
func (mm *MultiMutex) TryLockContext(ctx context.Context) error {
	return mm.lock(ctx, 1)
}

// lock is LockContext with tries.
func (mm *MultiMutex) lock(ctx context.Context, tries int) error {
	if mm.invalid != nil {
		return mm.invalid
	}
	if err := checkCtx(ctx); err != nil {
		return err
	}
	mm.lease.mu.Lock()
	holding := mm.lease.value != "" && !mm.lease.released
	mm.lease.mu.Unlock()
	if holding {
		return &ArgumentError{Arg: "MultiMutex", Problem: "it holds its names already; Unlock it first, or use a MultiMutex per holder"}
	}
	return mm.lease.s.observed(ctx, OpMultiLock, mm.lease.name, tries, func(ctx context.Context) (time.Time, uint64, error) {
		err := mm.tryLock(ctx, tries)
		if err != nil {
			return time.Time{}, 0, err
		}
		return mm.Until(), mm.Token(), nil
	})
}

// tryLock is lock's loop of tries.
func (mm *MultiMutex) tryLock(ctx context.Context, tries int) (err error) {
	cfg := mm.lease.s.t.cfg
	var w *multiWaiter
	defer func() {
		if w != nil {
			w.leave(err == nil, mm.Until())
		}
	}()
	listen := cfg.handoff && mm.lease.s.t.rs.canListen && tries > 1
	var last error
	for try := 1; ; try++ {
		if err := ctx.Err(); err != nil {
			return failedAfter(last, err)
		}
		start := time.Now()
		if w != nil {
			w.attempting(start)
		}
		held, err := mm.attempt(ctx, try)
		if held {
			return nil
		}
		last = err
		if try >= tries || errors.Is(err, ErrFenceKeyInUse) {
			return failedAfter(last, nil)
		}
		var wake <-chan struct{}
		if listen {
			if w == nil {
				w = mm.join(start)
			}
			w.idle()
			wake = w.wake
		}
		if err := waitRetry(ctx, cfg.delayFunc(try), wake); err != nil {
			return failedAfter(last, err)
		}
	}
}

// A multiWaiter is a Lock of a MultiMutex waiting for its names: it
// watches each name's releases (see handoff.Spec.Watch: it takes no turn
// among the name's waiters), and any of them wakes it.
type multiWaiter struct {
	ws   []handoff.Waiter // one per name
	wake chan struct{}    // signalled when a name was released; buffered
}

// join makes the waiter of a Lock whose failed attempt started at since.
func (mm *MultiMutex) join(since time.Time) *multiWaiter {
	rs := mm.lease.s.t.rs
	q := rs.handoff.start(rs)
	w := &multiWaiter{ws: make([]handoff.Waiter, len(mm.names)), wake: make(chan struct{}, 1)}
	for i, name := range mm.names {
		q.Join(&w.ws[i], handoff.Spec{Name: name, Owner: mm, Watch: true}, since, w.wake)
	}
	return w
}

// attempting records that w starts an attempt at start.
func (w *multiWaiter) attempting(start time.Time) {
	for i := range w.ws {
		w.ws[i].Attempting(start)
	}
}

// idle records that w waits.
func (w *multiWaiter) idle() {
	for i := range w.ws {
		w.ws[i].Idle()
	}
}

// leave ends w's watch; acquired (valid until until) tells the queues that
// the releases heard so far were the one taken.
func (w *multiWaiter) leave(acquired bool, until time.Time) {
	for i := range w.ws {
		w.ws[i].Leave(acquired, until)
	}
}

// attempt is one try on every server; it reports whether it holds the
// names, or the try's error.
func (mm *MultiMutex) attempt(ctx context.Context, n int) (bool, error) {
	s := mm.lease.s
	value, err := s.t.cfg.genValueFunc()
	if err != nil {
		return false, err
	}
	hold := &keyHold{}
	replies := newPendingReplies(len(s.t.nodes.pools))
	var reads *fencing.Reads
	if mm.counters != nil {
		reads = &fencing.Reads{}
	}
	args := []any{value, s.t.args.expiryMillis}
	start := time.Now()
	res := s.t.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		defer replies.done(node)
		ok, err := mm.acquireOn(ctx, node, pool, args, reads)
		if ok || (err != nil && !neverSent(err)) {
			if !hold.record(node, nil) {
				// The attempt gave up before this reply came.
				_, _ = s.release(s.bounded(), node, pool, mm.names, value, "")
			}
		}
		return ok, err
	}, s.watch(ctx, OpMultiLock, mm.lease.name, n), nil)
	until := s.validUntil(start)
	granted := res.n >= s.quorum() && res.ctxErr == nil && time.Now().Before(until)
	var token uint64
	if granted && reads != nil {
		token, _ = reads.Token()
		wb := s.writeBackToken(ctx, mm.names, mm.counters, true, value, token, replies, mm.lease.name)
		switch {
		case wb.ctxErr != nil:
			res.ctxErr = wb.ctxErr
		case wb.n < s.quorum():
			res.err = errors.Join(ErrTokenNotStored, wb.err)
		}
		granted = wb.ctxErr == nil && wb.n >= s.quorum() && time.Now().Before(until)
	}
	if granted {
		mm.lease.mu.Lock()
		mm.lease.value, mm.lease.token, mm.lease.until, mm.lease.released = value, token, until, false
		mm.lease.replies = replies
		mm.lease.mu.Unlock()
		return true, nil
	}
	s.releaseLater(hold.giveUp(), mm.names, value, "")
	err = res.err
	if res.ctxErr != nil {
		err = nil // failedAfter joins it
	}
	if reads != nil && reads.Failure() != nil {
		err = reads.Failure()
	}
	return false, err
}

// acquireOn runs MultiAcquire (FencedMultiAcquire with fencing, adding
// what the server read to reads) on pool: every name set, or none.
func (mm *MultiMutex) acquireOn(ctx context.Context, node int, pool redis.Pool, args []any, reads *fencing.Reads) (bool, error) {
	s := mm.lease.s
	var set [][]int // the groups set so far, on a Redis Cluster
	ok := true
	script := scripts.MultiAcquire
	if reads != nil {
		script = scripts.FencedMultiAcquire
	}
	err := s.evalPaired(ctx, node, pool, script, mm.names, mm.counters, args, func(group []int, reply any) (bool, error) {
		if reads == nil {
			n, err := scripts.ParseMultiIndex(reply, len(group), "multi-key acquire")
			if err != nil || n != 0 {
				ok = false
				return false, err
			}
		} else {
			r, err := scripts.ParseFencedMultiAcquire(reply, len(group))
			switch {
			case err != nil:
				ok = false
				return false, err
			case r.NotCounter:
				ok = false
				err = s.fenceKeyInUse(node, mm.lease.name)
				reads.Fail(fencing.KeyInUse, err)
				return false, err
			case !r.Acquired:
				ok = false
				return false, nil
			}
			addFenceRead(reads, r)
		}
		set = append(set, group)
		return true, nil
	})
	if (!ok || err != nil) && len(set) > 0 && len(set) < len(mm.names) {
		// A cluster set some slots and refused one: give them back.
		var keys []string
		for _, g := range set {
			for _, i := range g {
				keys = append(keys, mm.names[i])
			}
		}
		_, _ = s.release(ctx, node, pool, keys, args[0].(string), "")
	}
	return ok && err == nil, err
}

// Unlock is UnlockContext with context.Background().
func (mm *MultiMutex) Unlock() (bool, error) { return mm.UnlockContext(context.Background()) }

// UnlockContext releases every name and reports whether a quorum of
// servers released them all; it stops the keep-alive first. A server on
// which a name had expired is reported as ErrLockAlreadyExpired, one where
// a name holds another value as *ErrNodeTaken. Without a lock, or a second
// time, it returns ErrNotHeld. When ctx ends during the call the releases
// sent complete in the background.
func (mm *MultiMutex) UnlockContext(ctx context.Context) (bool, error) {
	if mm.invalid != nil {
		return false, mm.invalid
	}
	if err := checkCtx(ctx); err != nil {
		return false, err
	}
	var ok bool
	err := mm.lease.s.observed(ctx, OpMultiUnlock, mm.lease.name, 0, func(ctx context.Context) (time.Time, uint64, error) {
		var err error
		ok, err = mm.lease.releaseLease(ctx, mm.names)
		return time.Time{}, 0, err
	})
	return ok, err
}

// Extend is ExtendContext with context.Background().
func (mm *MultiMutex) Extend() (bool, error) { return mm.ExtendContext(context.Background()) }

// ExtendContext resets the expiry of every name on each server where all
// still hold the MultiMutex's value (on a server where one does not, none
// is extended), and reports whether a quorum did so in time to leave a
// validity; Until moves on then. ErrNotHeld without a lock.
func (mm *MultiMutex) ExtendContext(ctx context.Context) (bool, error) {
	if mm.invalid != nil {
		return false, mm.invalid
	}
	if err := checkCtx(ctx); err != nil {
		return false, err
	}
	ok, _, err := mm.lease.extendObserved(ctx, OpExtend)
	return ok, err
}

// Valid is ValidContext with context.Background().
func (mm *MultiMutex) Valid() (bool, error) { return mm.ValidContext(context.Background()) }

// ValidContext reports whether a quorum of servers holds the MultiMutex's
// value under every name (read with GET, one per name).
func (mm *MultiMutex) ValidContext(ctx context.Context) (bool, error) {
	if mm.invalid != nil {
		return false, mm.invalid
	}
	if err := checkCtx(ctx); err != nil {
		return false, err
	}
	value := mm.Value()
	if value == "" {
		return false, ErrNotHeld
	}
	res := mm.lease.s.t.roundAtQuorum(ctx, func(ctx context.Context, _ int, pool redis.Pool) (ok bool, err error) {
		defer recoverPanic(&err)
		conn, err := pool.Get(ctx)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		for _, name := range mm.names {
			v, err := conn.Get(name)
			if err != nil || v != value {
				return false, err
			}
		}
		return true, nil
	}, nil, nil)
	if res.ctxErr != nil {
		return false, res.ctxErr
	}
	return res.n >= mm.lease.s.quorum(), res.err
}

// KeepAlive keeps the names locked until Unlock, as Mutex.KeepAlive does
// (the same contract: the context returned is cancelled, with a cause
// wrapping ErrLockLost, the moment the lock can no longer be proven held,
// or ErrUnlocked at Unlock).
func (mm *MultiMutex) KeepAlive(ctx context.Context) (context.Context, error) {
	if mm.invalid != nil {
		return nil, mm.invalid
	}
	return mm.lease.keepAlive(ctx)
}

// RunLocked locks every name, keeps them alive while fn runs with the
// holder's context, and unlocks them when fn returns or panics, as
// Mutex.RunLocked does.
func (mm *MultiMutex) RunLocked(ctx context.Context, fn func(ctx context.Context) error) error {
	if fn == nil {
		return &ArgumentError{Arg: "fn", Problem: "RunLocked was given a nil function"}
	}
	if err := mm.LockContext(ctx); err != nil {
		return err
	}
	return runHeld(ctx, &mm.lease, mm.UnlockContext, fn)
}
