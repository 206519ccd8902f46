package redsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// A Semaphore hands out up to a fixed number of permits on a name, fleet
// wide: a Lease holds a weight of permits until it is released or expires.
// Acquire and TryAcquire take a weight, as golang.org/x/sync/semaphore's
// Weighted does; a distributed permit also needs a lease, with an expiry,
// Extend and KeepAlive, as a Mutex's lock has.
//
// Safety: at most permits weight is held at once, under the Mutex's
// assumptions (clocks that drift by at most the drift factor, servers
// that keep their keys until they expire). Counting holders on each server
// and asking a majority to admit is not enough for more than one permit:
// with 5 servers and 2 permits, A admitted by {1,2,3}, B by {3,4,5} and C
// by {1,2,4} makes three holders while no server admits more than 2. So
// each permit is a slot of its own, a Redlock key ("{name}:permit:i", i <
// permits), and a lease of weight n holds n distinct slots, each stored with
// the lease's value on a quorum of servers (the same n slots on each server
// of that quorum). Two leases cannot hold one slot
// at once, by the Mutex's argument on that key: their quorums would share a
// server that stores two values under one key. So the leases held at any
// moment hold pairwise distinct slots, and their weights add up to at most
// the number of slots, permits. On each server one script (PermitAcquire)
// sets n free slots or none, scanning from a slot the attempt draws at
// random; the servers may pick different slots (their states differ), and
// the attempt keeps the n slots that a quorum of servers set alike,
// releases the others, and fails, releasing everything, when no quorum set
// the same slots or the validity is used up. Every process must give a name the
// same number of permits: with different numbers, up to the largest is
// held.
//
// Waiting: Acquire waits until ctx ends. A failed attempt waits for the
// retry delay (WithRetryDelay), or less: with hand-off (the default) and
// pools that can subscribe, every Release announces itself on the
// servers' release channel of the semaphore, and an announcement by a
// quorum of servers (or a Release in this process) wakes the first waiter
// of each process at once; each waiter that gets its permits, or gives
// up, wakes the next of its process. Within a process waiters take turns
// in arrival order: an Acquire that comes while others wait queues behind
// them without an attempt, even when the permits it asks for are free, as
// golang.org/x/sync/semaphore's Weighted does (a waiter's retry delay
// still ends its wait, so the order is not strict). Across processes there
// is no queue: the first waiter of each process tries when woken, so the
// permits are shared about evenly among the processes that wait, not among
// their waiters (bench's BenchmarkSemaphoreClients measures both).
//
// Fencing (WithFencing): each lease gets a token (Lease.Token), agreed as
// the Mutex's is (docs/fencing.md) from one counter for the whole
// semaphore ("{name}:permits:redsync:fence") and the servers' clocks: the acquire
// script of each server reads the counter in the step that sets the slots,
// and the token is stored back to a quorum, on each server only while all
// the lease's slots there still hold its value, before Acquire returns.
// So a lease's token is larger than that of every lease whose Acquire
// returned before this lease's attempt began (the two quorums share a
// server, whose counter the earlier one raised first) and of every earlier
// holder of one of its slots (the Mutex's argument, on that slot's key);
// leases held at once may get their tokens in any order. An attempt whose
// token a quorum did not store fails (ErrTokenNotStored) and releases its
// slots.
//
// A failed or cancelled Acquire leaves nothing on the servers; a crashed
// holder's permits come back when its keys expire. WithValue and
// WithSetNXOnExtend are not supported (an *ArgumentError). A Semaphore is
// safe for concurrent use by many goroutines; each Lease is one holder.
type Semaphore struct {
	name    string
	permits int
	invalid error
	s       keyServers
	slots   []string // the permit slots' keys
	// fenced are, with WithFencing, the slots' keys and then the
	// semaphore's fencing counter (fenceKey); nil without fencing.
	fenced   []string
	fenceKey string
	// announce is the name whose release channel announces the releases
	// of permits, and under which this process's waiters queue.
	announce string
	spec     handoff.Spec
}

// NewSemaphore returns a Semaphore of permits permits on name, configured
// by options (the Mutex's options: WithExpiry sets the leases' expiry).
// An empty name, permits < 1 or a bad option are reported by the first
// Acquire as an *ArgumentError.
func (r *Redsync) NewSemaphore(name string, permits int, options ...Option) *Semaphore {
	t := r.NewMutex(name, options...)
	sem := &Semaphore{name: name, permits: permits, s: keyServers{t: t}}
	switch {
	case name == "":
		sem.invalid = &ArgumentError{Arg: "name", Problem: "NewSemaphore was given an empty name"}
	case permits < 1:
		sem.invalid = &ArgumentError{Arg: "permits", Problem: fmt.Sprintf("a semaphore needs at least 1 permit, got %d", permits)}
	default:
		sem.invalid = keySetOptions(t, "a Semaphore")
	}
	if sem.invalid != nil {
		return sem
	}
	sem.slots = make([]string, permits)
	for i := range sem.slots {
		sem.slots[i] = permitKey(name, i)
	}
	sem.announce = "{" + name + "}:permits"
	sem.spec = handoff.Spec{Name: sem.announce, Owner: sem}
	if t.cfg.fencing {
		sem.fenceKey = fencing.Key(sem.announce)
		sem.fenced = append(slices.Clone(sem.slots), sem.fenceKey)
	}
	return sem
}

// permitKey is the key of permit slot i of the semaphore name. The hash
// tag puts every slot of a semaphore in one Redis Cluster hash slot.
func permitKey(name string, i int) string {
	return "{" + name + "}:permit:" + strconv.Itoa(i)
}

// Name returns the semaphore's name.
func (sem *Semaphore) Name() string { return sem.name }

// Permits returns the number of permits.
func (sem *Semaphore) Permits() int { return sem.permits }

// A Lease is a weight of permits held from a Semaphore, until Release or
// its expiry. Its methods are safe for concurrent use.
type Lease struct {
	sem    *Semaphore
	weight int
	slots  []int // the permit slots held, 0-based
	lease  keyLease
}

// Token returns the lease's fencing token, with WithFencing (0 without):
// larger than the token of every lease of the semaphore whose Acquire
// returned before this lease's began, and of every earlier holder of a
// permit slot this lease holds (see Semaphore).
func (l *Lease) Token() uint64 { return l.lease.tokenOf() }

// Weight returns the number of permits the lease holds.
func (l *Lease) Weight() int { return l.weight }

// Until returns the time until which the permits are held for sure: the
// expiry less the time acquiring (or the last extension) took and the
// drift allowance.
func (l *Lease) Until() time.Time { return l.lease.untilTime() }

// Extend resets the expiry of the lease's permits on every server that
// still holds all of them, and reports whether a quorum did in time to
// leave a validity (Until moves on then). ErrNotHeld after Release.
func (l *Lease) Extend(ctx context.Context) (bool, error) {
	if err := checkCtx(ctx); err != nil {
		return false, err
	}
	ok, _, err := l.lease.extendObserved(ctx, OpExtend)
	return ok, err
}

// KeepAlive keeps the permits held until Release, as Mutex.KeepAlive keeps
// a lock: the context returned is cancelled, with a cause wrapping
// ErrLockLost, the moment the permits can no longer be proven held, or
// ErrUnlocked at Release.
func (l *Lease) KeepAlive(ctx context.Context) (context.Context, error) {
	return l.lease.keepAlive(ctx)
}

// Release gives the permits back, stopping the keep-alive first, and
// wakes the waiters. It returns nil when a quorum of servers ran the
// release (a permit that expired on a server is free there already),
// ErrNotHeld when the lease was released already, and otherwise the
// servers' errors.
// When ctx ends during the call the releases sent complete in the
// background.
func (l *Lease) Release(ctx context.Context) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	// The lease's slots: what its attempt set beyond them was released
	// when it decided, or by the late replies themselves.
	return l.sem.s.observed(ctx, OpRelease, l.sem.name, 0, func(ctx context.Context) (time.Time, uint64, error) {
		_, err := l.lease.releaseLease(ctx, l.lease.keys)
		return time.Time{}, 0, err
	})
}

// release is Release as runHeld calls it.
func (l *Lease) release(ctx context.Context) (bool, error) {
	err := l.Release(ctx)
	return err == nil, err
}

// checkWeight checks the arguments of an acquisition of weight.
func (sem *Semaphore) checkWeight(ctx context.Context, weight int) error {
	if sem.invalid != nil {
		return sem.invalid
	}
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if weight < 1 || weight > sem.permits {
		return &ArgumentError{Arg: "weight", Problem: fmt.Sprintf("the weight must be from 1 to the semaphore's %d permits, got %d", sem.permits, weight)}
	}
	return nil
}

// TryAcquire makes one attempt to acquire weight permits. It returns the
// Lease, or an error matching ErrFailed joined with the attempt's (an
// *ErrTaken when a quorum of servers had too few permits free). Bad
// arguments (weight < 1 or above the permits) are an *ArgumentError.
func (sem *Semaphore) TryAcquire(ctx context.Context, weight int) (*Lease, error) {
	if err := sem.checkWeight(ctx, weight); err != nil {
		return nil, err
	}
	var lease *Lease
	err := sem.s.observed(ctx, OpAcquire, sem.name, 1, func(ctx context.Context) (time.Time, uint64, error) {
		var err error
		if lease, err = sem.attempt(ctx, weight, 1); lease != nil {
			return lease.Until(), lease.Token(), nil
		}
		return time.Time{}, 0, failedAfter(err, ctx.Err())
	})
	return lease, err
}

// Acquire acquires weight permits, waiting until they are free or ctx
// ends (then the error matches ErrFailed and ctx.Err(), joined with the
// last attempt's). Bad arguments (weight < 1 or above the permits) are an
// *ArgumentError. A cancelled Acquire leaves nothing on the servers.
func (sem *Semaphore) Acquire(ctx context.Context, weight int) (*Lease, error) {
	if err := sem.checkWeight(ctx, weight); err != nil {
		return nil, err
	}
	var lease *Lease
	err := sem.s.observed(ctx, OpAcquire, sem.name, 0, func(ctx context.Context) (time.Time, uint64, error) {
		var err error
		if lease, err = sem.acquire(ctx, weight); err != nil {
			return time.Time{}, 0, err
		}
		return lease.Until(), lease.Token(), nil
	})
	return lease, err
}

// acquire is Acquire once its arguments are checked.
func (sem *Semaphore) acquire(ctx context.Context, weight int) (*Lease, error) {
	var w *waiter
	defer func() {
		if w != nil {
			// The next waiter tries at once: more permits may be free.
			w.leave(false, time.Time{})
		}
	}()
	listen := sem.s.t.cfg.handoff && sem.s.t.rs.canListen
	if listen {
		// Behind the waiters of this process, without a first attempt:
		// permits freed now are theirs first.
		w = sem.s.t.rs.handoff.joinBehind(sem.spec)
	}
	var last error
	for try := 1; ; try++ {
		start := time.Now()
		if w != nil {
			w.attempting(start)
		}
		if try > 1 || w == nil {
			lease, err := sem.attempt(ctx, weight, try)
			if lease != nil {
				return lease, nil
			}
			last = err
			if ctx.Err() != nil {
				return nil, failedAfter(last, ctx.Err())
			}
			if errors.Is(err, ErrFenceKeyInUse) {
				return nil, failedAfter(last, nil)
			}
		}
		var wake <-chan struct{}
		if listen {
			if w == nil {
				w = &waiter{wake: make(chan struct{}, 1)}
				sem.s.t.rs.handoff.start(sem.s.t.rs).Join(&w.w, sem.spec, start, w.wake)
			}
			w.idle()
			wake = w.wake
		}
		if err := waitRetry(ctx, sem.s.t.cfg.delayFunc(try), wake); err != nil {
			return nil, failedAfter(last, err)
		}
	}
}

// RunAcquired acquires weight permits (Acquire), keeps them alive
// (KeepAlive) while fn runs with the holder's context, and releases them
// when fn returns or panics. It returns fn's error joined with the
// lease's: Acquire's error (fn does not run), the cause of lost permits
// (wrapping ErrLockLost), or Release's error.
func (sem *Semaphore) RunAcquired(ctx context.Context, weight int, fn func(ctx context.Context) error) error {
	if fn == nil {
		return &ArgumentError{Arg: "fn", Problem: "RunAcquired was given a nil function"}
	}
	lease, err := sem.Acquire(ctx, weight)
	if err != nil {
		return err
	}
	return runHeld(ctx, &lease.lease, lease.release, fn)
}

// permitHold tracks the permit slots an attempt's value may hold on each
// server (see keyHold): nil for a server whose acquire failed with an
// error, which may hold any.
type permitHold struct {
	mu      sync.Mutex // guards the fields below
	givenUp bool
	kept    []int // the slots the lease keeps, once decided; sorted
	decided bool
	set     map[int][]int
}

// record notes the slots set on node (nil: any) and returns those the
// caller must release itself: every one when the attempt gave up, those
// the lease does not keep when it succeeded.
func (h *permitHold) record(node int, slots []int, all int) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.givenUp:
		return orAll(slots, all)
	case h.decided:
		return without(orAll(slots, all), h.kept)
	}
	if h.set == nil {
		h.set = make(map[int][]int)
	}
	h.set[node] = slots
	return nil
}

// orAll returns slots, or every slot of all when slots is nil.
func orAll(slots []int, all int) []int {
	if slots != nil {
		return slots
	}
	every := make([]int, all)
	for i := range every {
		every[i] = i
	}
	return every
}

// without returns the slots not in kept (sorted).
func without(slots, kept []int) []int {
	var out []int
	for _, s := range slots {
		if _, found := slices.BinarySearch(kept, s); !found {
			out = append(out, s)
		}
	}
	return out
}

// abandon gives up a hold that was decided (its token was not stored):
// it returns the servers that may hold the kept slots, which the caller
// releases; replies from now on release what they set themselves.
func (h *permitHold) abandon() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.givenUp, h.decided = true, false
	nodes := make([]int, 0, len(h.set))
	for node := range h.set {
		nodes = append(nodes, node)
	}
	return nodes
}

// decide picks the slots that a quorum of servers set, the same weight
// slots on each (a server sets as many as asked, or none), and returns
// them with, per server, what it set beyond them. ok is false when no set
// of slots has a quorum or the attempt is not in time; the hold is then
// given up, with every server's slots to release.
//
// Asking a quorum to agree on the whole set, rather than each slot on a
// quorum of its own, lets Extend and Release work per server, all slots
// or none, as a MultiMutex's do; servers in the same state pick the same
// slots, since each scans from the slot the attempt gives.
func (h *permitHold) decide(quorum, all int, inTime bool) (kept []int, release map[int][]int, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	count := make(map[string]int)
	for _, slots := range h.set {
		if slots == nil {
			continue
		}
		slots = slices.Clone(slots)
		slices.Sort(slots)
		key := fmt.Sprint(slots)
		count[key]++
		if count[key] >= quorum {
			kept = slots
		}
	}
	ok = inTime && kept != nil
	if !ok {
		kept = nil
		h.givenUp = true
	} else {
		h.decided, h.kept = true, kept
	}
	release = make(map[int][]int)
	for node, slots := range h.set {
		if extra := without(orAll(slots, all), kept); len(extra) > 0 {
			release[node] = extra
		}
	}
	return kept, release, ok
}

// attempt is one acquisition of weight permits on every server (the
// n-th of its Acquire): the Lease, or nil and the attempt's error.
func (sem *Semaphore) attempt(ctx context.Context, weight, n int) (*Lease, error) {
	s := sem.s
	value, err := s.t.cfg.genValueFunc()
	if err != nil {
		return nil, err
	}
	hold := &permitHold{}
	replies := newPendingReplies(len(s.t.nodes.pools))
	var reads *fencing.Reads
	if sem.fenced != nil {
		reads = &fencing.Reads{}
	}
	args := []any{value, s.t.args.expiryMillis, weight, 1 + rand.Intn(sem.permits)}
	start := time.Now()
	res := s.t.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		defer replies.done(node)
		slots, free, err := sem.acquireOn(ctx, node, pool, weight, args, reads)
		ok := err == nil && free >= weight
		if ok || (err != nil && !neverSent(err)) {
			// slots is nil after an error: any slot may be set.
			if extra := hold.record(node, slots, sem.permits); len(extra) > 0 {
				_, _ = s.release(s.bounded(), node, pool, sem.keysOf(extra), value, "")
			}
		}
		return ok, err
	}, s.watch(ctx, OpAcquire, sem.name, n), nil)
	// Held only with a validity left, and when the caller still waits.
	until := s.validUntil(start)
	inTime := res.ctxErr == nil && time.Now().Before(until)
	kept, release, ok := hold.decide(s.quorum(), sem.permits, inTime)
	for node, slots := range release {
		// Not announced: these slots were never part of a lease.
		s.releaseLater([]int{node}, sem.keysOf(slots), value, "")
	}
	var token uint64
	if ok && reads != nil {
		token, _ = reads.Token()
		wb := s.writeBackToken(ctx, sem.keysOf(kept), []string{sem.fenceKey}, false, value, token, replies, "semaphore "+strconv.Quote(sem.name))
		switch {
		case wb.ctxErr != nil:
			res.ctxErr = wb.ctxErr
		case wb.n < s.quorum():
			res.err = errors.Join(ErrTokenNotStored, wb.err)
		}
		if wb.ctxErr != nil || wb.n < s.quorum() || !time.Now().Before(until) {
			ok = false
			s.releaseLater(hold.abandon(), sem.keysOf(kept), value, "")
		}
	}
	if !ok {
		err = res.err
		if reads != nil && reads.Failure() != nil {
			err = reads.Failure()
		}
		if err == nil && res.ctxErr == nil {
			err = fmt.Errorf("redsync: fewer than %d permit slots were set by a quorum of servers", weight)
		}
		return nil, err
	}
	l := &Lease{sem: sem, weight: weight, slots: kept}
	l.lease = keyLease{s: s, name: sem.name, releaseOp: OpRelease, keys: sem.keysOf(kept), announce: sem.announce, value: value, token: token, until: until, replies: replies, answered: true}
	return l, nil
}

// acquireOn runs PermitAcquire (FencedPermitAcquire with fencing, adding
// what the server read to reads) on pool: the slots it set, or how many
// were free when too few.
func (sem *Semaphore) acquireOn(ctx context.Context, node int, pool redis.Pool, weight int, args []any, reads *fencing.Reads) (slots []int, free int, err error) {
	if reads == nil {
		err = sem.s.eval(ctx, node, pool, scripts.PermitAcquire, sem.slots, args, func(_ []int, reply any) (bool, error) {
			var err error
			slots, free, err = scripts.ParsePermitAcquire(reply, sem.permits, weight, nil)
			return true, err
		})
		return slots, free, err
	}
	err = sem.s.eval(ctx, node, pool, scripts.FencedPermitAcquire, sem.fenced, args, func(_ []int, reply any) (bool, error) {
		r, set, err := scripts.ParseFencedPermitAcquire(reply, sem.permits, weight, nil)
		switch {
		case err != nil:
			return false, err
		case r.NotCounter:
			err = sem.s.fenceKeyInUse(node, "semaphore "+strconv.Quote(sem.name))
			reads.Fail(fencing.KeyInUse, err)
			return false, err
		case r.Acquired:
			addFenceRead(reads, r)
			slots, free = set, weight
		default:
			free = r.Refused
		}
		return true, nil
	})
	return slots, free, err
}

// keysOf returns the keys of slots.
func (sem *Semaphore) keysOf(slots []int) []string {
	keys := make([]string, len(slots))
	for i, s := range slots {
		keys[i] = sem.slots[s]
	}
	return keys
}
