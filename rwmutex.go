package redsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// An RWMutex is a distributed reader/writer lock on one name: any number
// of readers share it, a writer excludes readers and other writers, and a
// writer waiting for readers to leave keeps new readers out.
//
// On each server the name's key is free, holds a writer's value, or holds
// a mark meaning "readers" whose expiry is at least every live reader's;
// the readers and their expiries live in a hash beside the key, in its
// hash slot ("{name}:redsync:rw", or name+":redsync:rw" with a hash tag).
// A reader is admitted on a server only when the key is free or marked
// for readers and no writer claims its turn there; a writer sets the key
// only when no reader lives there, and while readers live it claims its
// turn instead, which keeps new readers out of that server until the
// claim ends (its expiry) or the writer is released. Each holds when a
// quorum of servers admitted it, within its validity, as a Mutex does.
//
// Why a reader R and a writer W never hold at once, under the Mutex's
// assumptions (servers that do not forget keys within their expiry,
// clocks at about the same rate, pauses shorter than the expiry): R holds
// on a quorum, W on a quorum, and any two quorums share a server s. If s
// admitted R first, R's entry and the mark live on s until R's expiry,
// past R's validity, and s refuses to set W's key until then. If s set W's
// key first, the key holds W's value until W's expiry, past W's validity,
// and s refuses R until then. Two writers exclude each other as two
// Mutexes do: one key, set only when free.
//
// Turns: a waiting writer that claimed a quorum of servers stops new
// readers from entering, so writers are not starved by a stream of
// readers; at most one writer can have such a quorum (two would share a
// server, which keeps one claim). Readers waiting behind a writer are not
// starved either: the writer's claim ends when it takes the lock, and
// once it releases, waiting readers and writers try again alike; readers
// then enter together. Other waiting writers give their servers up after
// every try that found no such quorum and retry after the retry delay, as
// Redlock does. Waiting is by polling at the retry delay (WithRetryDelay):
// releases are announced on the name's release channel, but an RWMutex
// does not listen to them yet.
//
// With a plain Mutex, or a redsync v4 process, on the same name: the key
// is the name, so a Mutex is excluded by readers (the key holds the
// readers' mark) and by writers, and excludes both while it holds: to an
// RWMutex it is a writer that does not wait its turn. It does not claim a
// turn, and an RWMutex writer does not join the Mutex's fleet queue.
//
// Like a Mutex, an RWMutex stands for one holder: it holds a read lock or
// the write lock at a time; use one per goroutine. Fencing tokens,
// Extend and KeepAlive are not offered for it yet.
type RWMutex struct {
	name       string
	readersKey string
	// m carries the configuration (the options) and runs the rounds; it
	// never locks.
	m *Mutex

	mu   sync.Mutex // guards held
	held rwHeld
}

// rwHeld is what an RWMutex holds, guarded by RWMutex.mu.
type rwHeld struct {
	value string
	write bool
	until time.Time
	try   *rwTry // the try that acquired value
}

// rwReadersMark is what the key holds while readers hold; no lock value
// can be it (see checkValue).
const rwReadersMark = reservedValuePrefix + "readers"

// rwSuffix ends the key of an RWMutex's readers.
const rwSuffix = ":redsync:rw"

// rwReadersKey returns the key of name's readers, in the hash slot of
// name whenever that is possible, as the fencing counter is.
func rwReadersKey(name string) string {
	return strings.TrimSuffix(fencing.Key(name), fencing.Suffix) + rwSuffix
}

// Name returns the name, the key of the lock.
func (rw *RWMutex) Name() string { return rw.name }

// Until returns when the lock held (read or write) is no longer held for
// sure; the zero time when none is.
func (rw *RWMutex) Until() time.Time {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.held.until
}

// RLock acquires a read lock: RLockContext with context.Background().
func (rw *RWMutex) RLock() error { return rw.RLockContext(context.Background()) }

// RLockContext acquires a read lock, shared with other readers, trying up
// to WithTries times with the retry delay between tries; it gives up when
// ctx ends (the error then matches ErrFailed and ctx.Err()). On failure it
// leaves nothing on any server. An RWMutex that holds a lock already, a
// nil ctx or a bad option is an *ArgumentError.
func (rw *RWMutex) RLockContext(ctx context.Context) error {
	return rw.lock(ctx, false, rw.m.cfg.tries)
}

// TryRLockContext tries once to acquire a read lock.
func (rw *RWMutex) TryRLockContext(ctx context.Context) error { return rw.lock(ctx, false, 1) }

// RUnlock releases the read lock: RUnlockContext with
// context.Background().
func (rw *RWMutex) RUnlock() (bool, error) { return rw.RUnlockContext(context.Background()) }

// RUnlockContext releases the read lock and reports whether a quorum of
// servers released it. It returns ErrNotHeld, sending nothing, when the
// RWMutex holds no read lock.
func (rw *RWMutex) RUnlockContext(ctx context.Context) (bool, error) {
	return rw.unlock(ctx, false)
}

// Lock acquires the write lock: LockContext with context.Background().
func (rw *RWMutex) Lock() error { return rw.LockContext(context.Background()) }

// LockContext acquires the write lock, excluding readers and writers,
// trying up to WithTries times; while readers hold it claims its turn, so
// that new readers wait (see RWMutex). It gives up when ctx ends (the
// error then matches ErrFailed and ctx.Err()), and on failure leaves
// nothing on any server, its claims included.
func (rw *RWMutex) LockContext(ctx context.Context) error {
	return rw.lock(ctx, true, rw.m.cfg.tries)
}

// TryLockContext tries once to acquire the write lock.
func (rw *RWMutex) TryLockContext(ctx context.Context) error { return rw.lock(ctx, true, 1) }

// Unlock releases the write lock: UnlockContext with
// context.Background().
func (rw *RWMutex) Unlock() (bool, error) { return rw.UnlockContext(context.Background()) }

// UnlockContext releases the write lock and reports whether a quorum of
// servers released it. It returns ErrNotHeld, sending nothing, when the
// RWMutex holds no write lock.
func (rw *RWMutex) UnlockContext(ctx context.Context) (bool, error) {
	return rw.unlock(ctx, true)
}

// rwTry is one value's acquisition on the servers: what each server
// replied, and whether the value was given up (after which a late reply
// that admitted it is undone at once).
type rwTry struct {
	value     string
	write     bool
	abandoned atomic.Bool

	mu    sync.Mutex // guards codes
	codes []int64    // per server: the last reply code, -1 for none
}

// lock is RLockContext and LockContext.
func (rw *RWMutex) lock(ctx context.Context, write bool, tries int) error {
	m := rw.m
	if err := m.check(ctx); err != nil {
		return err
	}
	rw.mu.Lock()
	busy := rw.held.value != ""
	rw.mu.Unlock()
	if busy {
		return &ArgumentError{Arg: "RWMutex", Problem: "it holds a lock already; an RWMutex stands for one holder: unlock first, or use another RWMutex"}
	}
	value, err := m.cfg.genValueFunc()
	if err != nil {
		return err
	}
	try := rw.newTry(value, write)
	var last error
	for n := 1; ; n++ {
		start := time.Now()
		res := m.round(ctx, rw.acquireOn(try), nil, nil)
		validity := m.cfg.expiry - time.Since(start) - m.drift()
		if res.n >= m.nodes.quorum && validity > 0 {
			rw.mu.Lock()
			rw.held = rwHeld{value: value, write: write, until: start.Add(m.cfg.expiry - m.drift()), try: try}
			rw.mu.Unlock()
			return nil
		}
		last = res.err
		if res.ctxErr != nil || n >= tries {
			rw.giveUp(ctx, try)
			return errors.Join(ErrFailed, last, res.ctxErr)
		}
		if !write || !try.claimsQuorum(m.nodes.quorum) {
			// Not the writer whose turn it is: give the servers up, as
			// a failed Redlock try does, so that no claims deadlock.
			rw.giveUp(ctx, try)
			try = rw.newTry(value, write)
		}
		timer := time.NewTimer(m.cfg.delayFunc(n))
		select {
		case <-ctx.Done():
			timer.Stop()
			rw.giveUp(ctx, try)
			return errors.Join(ErrFailed, last, ctx.Err())
		case <-timer.C:
		}
	}
}

func (rw *RWMutex) newTry(value string, write bool) *rwTry {
	t := &rwTry{value: value, write: write, codes: make([]int64, len(rw.m.nodes.pools))}
	for i := range t.codes {
		t.codes[i] = -1
	}
	return t
}

// claimsQuorum reports whether a quorum of servers set the writer's key
// or keep its claim.
func (t *rwTry) claimsQuorum(quorum int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.codes {
		if c == 1 || c == 2 {
			n++
		}
	}
	return n >= quorum
}

// acquireOn is the acquire of try on one server.
func (rw *RWMutex) acquireOn(try *rwTry) nodeOp {
	m := rw.m
	script, name := scripts.RWReadAcquire, "rw_read_acquire"
	if try.write {
		script, name = scripts.RWWriteAcquire, "rw_write_acquire"
	}
	args := []any{m.args.name, rw.readersKey, try.value, m.args.expiryMillis, rwReadersMark}
	return func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, script, args...)
		if err != nil {
			return false, err
		}
		code, err := scripts.ParseRW(name, reply)
		if err != nil {
			return false, err
		}
		try.mu.Lock()
		try.codes[node] = code
		try.mu.Unlock()
		if code != 0 && try.abandoned.Load() {
			// A late reply for a value given up: the release sent to
			// this server may have run before this acquire did.
			bounded, cancel := context.WithTimeout(context.Background(), m.opTimeout())
			_, _ = rw.releaseOn(try)(bounded, node, pool)
			cancel()
		}
		return code == 1, nil
	}
}

// releaseOn is the release of try on one server.
func (rw *RWMutex) releaseOn(try *rwTry) nodeOp {
	m := rw.m
	script, name := scripts.RWReadRelease, "rw_read_release"
	if try.write {
		script, name = scripts.RWWriteRelease, "rw_write_release"
	}
	args := []any{m.args.name, rw.readersKey, try.value, m.args.channel, rwReadersMark}
	return func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, script, args...)
		if err != nil {
			return false, err
		}
		code, err := scripts.ParseRW(name, reply)
		return code == 1, err
	}
}

// giveUp releases try on every server, on a context detached from the
// caller's cancellation: a failed or cancelled lock leaves nothing.
func (rw *RWMutex) giveUp(ctx context.Context, try *rwTry) {
	try.abandoned.Store(true)
	rw.m.roundAtQuorum(context.WithoutCancel(ctx), rw.releaseOn(try), nil, nil)
}

// unlock is RUnlockContext and UnlockContext.
func (rw *RWMutex) unlock(ctx context.Context, write bool) (bool, error) {
	m := rw.m
	if err := m.checkActive(ctx, "release"); err != nil {
		return false, err
	}
	rw.mu.Lock()
	held := rw.held
	if held.value == "" || held.write != write {
		rw.mu.Unlock()
		return false, ErrNotHeld
	}
	rw.held = rwHeld{}
	rw.mu.Unlock()
	held.try.abandoned.Store(true)
	res := m.roundAtQuorum(ctx, rw.releaseOn(held.try), nil, nil)
	if res.n >= m.nodes.quorum {
		return true, nil
	}
	kind := "read"
	if write {
		kind = "write"
	}
	return false, errors.Join(fmt.Errorf("redsync: the %s lock on %q was released on %d servers, %d needed (it expired on the others, or they failed)",
		kind, rw.name, res.n, m.nodes.quorum), res.err, res.ctxErr)
}
