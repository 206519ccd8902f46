//go:build linux

package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync"
)

// Kinds of holders: the primitive a Holding was held with.
const (
	KindMutex     = ""           // a Mutex (Lock, Unlock)
	KindSemaphore = "semaphore"  // a Semaphore lease (Acquire, Release)
	KindMulti     = "multimutex" // a MultiMutex (Lock, Unlock of all its names)
	KindRWMutex   = "rwmutex"    // an RWMutex, read (Holding.Shared) or write lock
	KindElection  = "election"   // an Election's leader (Campaign, Resign)
)

// AllPrims are the primitives other than the Mutex that the prim workers
// of a client use (Config.Prims), in the order reports list them.
var AllPrims = []string{KindSemaphore, KindMulti, KindRWMutex, KindElection}

// NoPrims, as Config.Prims, turns the holders of the other primitives
// off: only Mutex holders run.
var NoPrims = []string{}

// The names of the other primitives. The MultiMutex locks two or three
// of multiNames, one of them replaced one time in three by a fast name of
// the Mutex holders (see mutexName), so that Mutex and MultiMutex
// exclude each other on it.
var (
	semaphores = []struct {
		name    string
		permits int
	}{{"faults:sem:0", 3}, {"faults:sem:1", 2}}
	multiNames    = []string{"faults:multi:0", "faults:multi:1", "faults:multi:2"}
	rwNames       = []string{"faults:rw:0", "faults:rw:1"}
	electionNames = []string{"faults:leader:0", "faults:leader:1"}
)

// PrimOps counts one primitive's operations in a client process.
type PrimOps struct {
	// Calls are the acquisitions tried (Acquire, Lock, RLock, Campaign),
	// Acquired those that succeeded.
	Calls    int64 `json:"calls"`
	Acquired int64 `json:"acquired"`
	// Extends are the Extend calls of holders in ModeExtend, ExtendFailed
	// those that did not extend.
	Extends      int64 `json:"extends,omitempty"`
	ExtendFailed int64 `json:"extend_failed,omitempty"`
	// Releases are the releases (Release, Unlock, RUnlock, Resign),
	// ReleaseFailed those that reported an error.
	Releases      int64 `json:"releases"`
	ReleaseFailed int64 `json:"release_failed"`
}

func newPrimOps(kinds []string) map[string]*PrimOps {
	if len(kinds) == 0 {
		return nil
	}
	out := make(map[string]*PrimOps, len(kinds))
	for _, k := range kinds {
		out[k] = &PrimOps{}
	}
	return out
}

// addPrims sums the primitives' counters of s into c (not atomically:
// for summaries read back from their files).
func (c *ClientSummary) addPrims(s *ClientSummary) {
	for kind, ops := range s.Prims {
		if c.Prims == nil {
			c.Prims = map[string]*PrimOps{}
		}
		sum := c.Prims[kind]
		if sum == nil {
			sum = &PrimOps{}
			c.Prims[kind] = sum
		}
		sum.Calls += ops.Calls
		sum.Acquired += ops.Acquired
		sum.Extends += ops.Extends
		sum.ExtendFailed += ops.ExtendFailed
		sum.Releases += ops.Releases
		sum.ReleaseFailed += ops.ReleaseFailed
	}
}

// mutexName is the name that MultiMutex holders share with the Mutex
// holders: the first fast name whose Mutex holders lock without fencing
// (a MultiMutex has no tokens, and a fenced name's holdings must all
// have one); "" when there is none.
func (cfg *clientConfig) mutexName() string {
	for _, name := range cfg.fastNames {
		if !fencedName(name) {
			return name
		}
	}
	return ""
}

// workPrims holds the other primitives until ctx ends: each time one of
// cfg.prims, drawn from the worker's seed, with an expiry, a mode and a
// time under the lock drawn as the Mutex workers draw theirs: mostly a
// few milliseconds in any mode, one time in eight one to three expiries
// with Extend or KeepAlive (an RWMutex has neither: its holders hold for
// at most a quarter of the expiry).
func (c *client) workPrims(ctx context.Context, worker int) {
	rng := rand.New(rand.NewSource(c.cfg.seed*1_000_003 + int64(c.cfg.id)*1009 + int64(worker)))
	seq := 1
	for ctx.Err() == nil {
		kind := c.cfg.prims[rng.Intn(len(c.cfg.prims))]
		expiry := c.cfg.expiries[rng.Intn(len(c.cfg.expiries))]
		p := plan{expiry: expiry, lockTimeout: 2 * time.Second, step: time.Millisecond, extendEvery: time.Millisecond}
		p.mode = []string{ModePlain, ModePlain, ModeExtend, ModeKeepAlive}[rng.Intn(4)]
		p.hold = time.Duration(rng.Int63n(int64(3 * time.Millisecond)))
		if rng.Intn(8) == 0 {
			p.mode = []string{ModeExtend, ModeKeepAlive}[rng.Intn(2)]
			p.hold = expiry + time.Duration(rng.Int63n(int64(2*expiry)))
			p.lockTimeout = 2*slices.Max(c.cfg.expiries) + 2*time.Second
			p.step = 5 * time.Millisecond
			p.extendEvery = expiry / 3
		}
		h := &Holding{Kind: kind, Client: c.cfg.id, Worker: worker, Seq: seq, ExpiryMS: expiry.Milliseconds()}
		var acquired bool
		switch kind {
		case KindSemaphore:
			acquired = c.holdSemaphore(ctx, rng, h, p)
		case KindMulti:
			acquired = c.holdMulti(ctx, rng, h, p)
		case KindRWMutex:
			acquired = c.holdRW(ctx, rng, h, p)
		case KindElection:
			acquired = c.holdLeader(ctx, rng, h, p)
		default:
			c.unexpected("unknown primitive %q", kind)
			return
		}
		if acquired {
			seq++
		}
	}
}

// primLock is the part of a primitive's holder that every primitive
// shares: the acquisition's counters and times, its value, and the
// release.
type primLock struct {
	c   *client
	ops *PrimOps
	h   *Holding
	// value is the last value the primitive made (WithGenValueFunc): the
	// acquisition's, once it acquired.
	mu    sync.Mutex // guards value
	value string
}

func (c *client) newPrimLock(h *Holding, mode string) *primLock {
	h.Mode = mode
	return &primLock{c: c, ops: c.sum.Prims[h.Kind], h: h}
}

// values is the option that makes the primitive's values, which tell
// who holds and how (see newValue), and notes the last one.
func (l *primLock) values() redsync.Option {
	return redsync.WithGenValueFunc(func() (string, error) {
		v, err := newValue(l.c.cfg.id, l.h.Mode)
		l.mu.Lock()
		l.value = v
		l.mu.Unlock()
		return v, err
	})
}

// acquire runs lock, as Lock is timed by holdOnce, and fills in the
// holding's times and value; it reports whether lock succeeded.
func (l *primLock) acquire(ctx context.Context, p plan, lock func(ctx context.Context) error) bool {
	lockCtx, cancel := context.WithTimeout(ctx, p.lockTimeout)
	defer cancel()
	atomic.AddInt64(&l.ops.Calls, 1)
	l.h.LockStart = monoNow()
	err := lock(lockCtx)
	l.h.Acquired = monoNow()
	if err != nil {
		if errors.Is(err, redsync.ErrInvalidArgument) {
			l.c.unexpected("%s %s: %v", l.h.Kind, l.h.Name, err)
		}
		return false
	}
	atomic.AddInt64(&l.ops.Acquired, 1)
	l.mu.Lock()
	l.h.Value = l.value
	l.mu.Unlock()
	return true
}

// hold works under the acquired lock and releases it (see client.hold),
// counting the release.
func (l *primLock) hold(ctx context.Context, lock heldLock, held context.Context, p plan, release func(context.Context) (bool, error)) {
	until := lock.Until()
	l.h.Until = monoOf(until)
	ok, err := l.c.hold(ctx, l.h, countedExtend{lock, l.ops}, held, until, p, release)
	atomic.AddInt64(&l.ops.Releases, 1)
	if !ok || err != nil {
		atomic.AddInt64(&l.ops.ReleaseFailed, 1)
	}
}

// countedExtend counts the extensions of a primitive's holder.
type countedExtend struct {
	heldLock
	ops *PrimOps
}

func (e countedExtend) ExtendContext(ctx context.Context) (bool, error) {
	atomic.AddInt64(&e.ops.Extends, 1)
	ok, err := e.heldLock.ExtendContext(ctx)
	if !ok {
		atomic.AddInt64(&e.ops.ExtendFailed, 1)
	}
	return ok, err
}

// holdSemaphore acquires a weight of one of the semaphores: 1 three times
// in five, 2 or all the permits otherwise.
func (c *client) holdSemaphore(ctx context.Context, rng *rand.Rand, h *Holding, p plan) bool {
	s := semaphores[rng.Intn(len(semaphores))]
	h.Name, h.Permits = s.name, s.permits
	h.Weight = min([]int{1, 1, 1, 2, s.permits}[rng.Intn(5)], s.permits)
	p.name = s.name
	l := c.newPrimLock(h, p.mode)
	sem := c.rs.NewSemaphore(s.name, s.permits, redsync.WithExpiry(p.expiry), l.values())
	var lease *redsync.Lease
	if !l.acquire(ctx, p, func(ctx context.Context) (err error) {
		lease, err = sem.Acquire(ctx, h.Weight)
		return err
	}) {
		return false
	}
	var held context.Context
	if p.mode == ModeKeepAlive {
		held = c.keepAlive(h, lease.KeepAlive)
	}
	l.hold(ctx, leaseLock{lease}, held, p, func(ctx context.Context) (bool, error) {
		err := lease.Release(ctx)
		return err == nil, err
	})
	return true
}

// leaseLock is a Lease as watch sees it.
type leaseLock struct{ *redsync.Lease }

func (l leaseLock) ExtendContext(ctx context.Context) (bool, error) { return l.Extend(ctx) }

// holdMulti locks two or three of multiNames in an order of their own,
// so that callers list shared names in different orders, one of them
// replaced one time in three by the name of Mutex holders.
func (c *client) holdMulti(ctx context.Context, rng *rand.Rand, h *Holding, p plan) bool {
	pool := slices.Clone(multiNames)
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	h.Names = pool[:2+rng.Intn(2)]
	if name := c.cfg.mutexName(); name != "" && rng.Intn(3) == 0 {
		h.Names[rng.Intn(len(h.Names))] = name
	}
	h.Name = h.Names[0]
	p.name = h.Name
	l := c.newPrimLock(h, p.mode)
	mm := c.rs.NewMultiMutex(h.Names, redsync.WithExpiry(p.expiry), l.values())
	if !l.acquire(ctx, p, mm.LockContext) {
		return false
	}
	var held context.Context
	if p.mode == ModeKeepAlive {
		held = c.keepAlive(h, mm.KeepAlive)
	}
	l.hold(ctx, mm, held, p, mm.UnlockContext)
	return true
}

// holdRW takes a read lock two times in three, the write lock otherwise,
// and holds it without extending: a few milliseconds, or up to a quarter
// of the expiry.
func (c *client) holdRW(ctx context.Context, rng *rand.Rand, h *Holding, p plan) bool {
	h.Name = rwNames[rng.Intn(len(rwNames))]
	h.Shared = rng.Intn(3) != 0
	p.name = h.Name
	if p.mode != ModePlain {
		p.mode = ModePlain
		p.hold = time.Duration(rng.Int63n(int64(p.expiry / 4)))
	}
	l := c.newPrimLock(h, p.mode)
	rw := c.rs.NewRWMutex(h.Name, redsync.WithExpiry(p.expiry), l.values())
	lock, unlock := rw.LockContext, rw.UnlockContext
	if h.Shared {
		lock, unlock = rw.RLockContext, rw.RUnlockContext
	}
	if !l.acquire(ctx, p, lock) {
		return false
	}
	l.hold(ctx, rwLock{rw}, nil, p, unlock)
	return true
}

// rwLock is an RWMutex as watch sees it; its holders never extend.
type rwLock struct{ *redsync.RWMutex }

func (rwLock) ExtendContext(context.Context) (bool, error) {
	return false, errors.New("faults: an RWMutex holder does not extend")
}

// holdLeader campaigns in one of the elections, leads as p says (its
// leadership kept alive by the Election: ModeKeepAlive), and resigns.
// What the leader may rely on is its term's lock until the Election's
// context ends: the Until of that lock, and of each extension, is what
// the Election's Mutex reported to the client's observer (see
// leaderUntil).
func (c *client) holdLeader(ctx context.Context, rng *rand.Rand, h *Holding, p plan) bool {
	h.Name = electionNames[rng.Intn(len(electionNames))]
	p.name, p.mode = h.Name, ModeKeepAlive
	l := c.newPrimLock(h, p.mode)
	e := c.rs.NewElection(h.Name, redsync.WithExpiry(p.expiry), l.values())
	until := &leaderUntil{}
	handed := new(atomic.Bool)
	if !l.acquire(ctx, p, func(ctx context.Context) error {
		ctx = context.WithValue(context.WithValue(ctx, handedKey{}, handed), leaderUntilKey{}, until)
		return e.Campaign(ctx, fmt.Sprintf("c%d/w%d/%d", c.cfg.id, h.Worker, h.Seq))
	}) {
		return false
	}
	h.HandedOver = handed.Load()
	term := e.Term()
	h.Token = &term
	if until.Until().IsZero() {
		c.unexpected("Campaign %s: no Until reported for the term's lock", h.Name)
	}
	l.hold(ctx, until, e.Context(), p, func(ctx context.Context) (bool, error) {
		// A lost leadership ends when the Election's Mutex reports it
		// lost, just before the Election's context ends: the Election
		// then releases the lock itself, and the next leader may be in
		// before this holder noticed.
		if at := until.lostAt(); at != 0 && at < h.Released {
			h.Released = at
		}
		err := e.Resign(ctx)
		return err == nil, err
	})
	return true
}

// leaderUntil is the Until of an Election leader's lock, as the
// Election's Mutex reports it to the client's observer (opCounter.Done)
// on Lock and on each extension of its KeepAlive; the Campaign's context
// carries it under leaderUntilKey. As watch sees it, it is a lock that
// the holder does not extend itself.
type leaderUntil struct {
	mu    sync.Mutex // guards until and lost
	until time.Time
	lost  int64 // when the lock was reported lost (CLOCK_MONOTONIC), 0 if not
}

type leaderUntilKey struct{}

func (u *leaderUntil) set(t time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t.After(u.until) {
		u.until = t
	}
}

func (u *leaderUntil) lostAt() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lost
}

// Until returns the last Until reported.
func (u *leaderUntil) Until() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.until
}

func (u *leaderUntil) ExtendContext(context.Context) (bool, error) {
	return false, errors.New("faults: an Election leader does not extend")
}

// Lost notes when an Election leader's lock was found lost: the
// Election's context is cancelled right after.
func (o opCounter) Lost(ctx context.Context, _ redsync.LostEvent) {
	if u, ok := ctx.Value(leaderUntilKey{}).(*leaderUntil); ok {
		at := monoNow()
		u.mu.Lock()
		if u.lost == 0 {
			u.lost = at
		}
		u.mu.Unlock()
	}
}

// Done notes the Until of a successful Lock or extension of an Election
// leader's lock: Validity from now. The event's own now came a moment
// before, so the Until noted errs late, as monoOf does: a window's end
// never comes out earlier than it was.
func (o opCounter) Done(ctx context.Context, e redsync.DoneEvent) {
	if e.Err != nil || e.Validity <= 0 {
		return
	}
	if u, ok := ctx.Value(leaderUntilKey{}).(*leaderUntil); ok {
		u.set(time.Now().Add(e.Validity))
	}
}
