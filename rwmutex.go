package redsync

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/handoff"
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
// Mutexes do: one key, set only when free. Extensions keep this: a
// reader's extension moves its entry and the mark together, on a server
// that still has both, and a writer's only a key that holds its value.
//
// Turns: a waiting writer that claimed a quorum of servers keeps its
// claims (renewing them at least every third of the expiry), which stops
// new readers from entering, so writers are not starved by a stream of
// readers; at most one writer can have such a quorum (two would share a
// server, which keeps one claim). Readers waiting behind a writer are not
// starved either: the writer's claim ends when it takes the lock, and
// once it releases, waiting readers and writers try again alike; readers
// then enter together. Other waiting writers give their servers up after
// every try that found no such quorum, as Redlock does, so that claims
// never deadlock.
//
// Waiting: a failed try waits for the retry delay (WithRetryDelay), or
// less: with hand-off (the default) and pools that can subscribe, the
// releases that free the key (the last reader's, a writer's) and a
// writer's claim given up are announced on the name's release channel,
// and an announcement by a quorum of servers wakes the first waiter of
// this process for the name, as it wakes a Mutex's; a reader that gets in
// wakes the next waiter at once, so readers of a process enter one after
// the other without waiting for another announcement. A wake-up does not
// spend a try. Waiters of one process take turns in arrival order; across
// processes there is no order but the writer's claim.
//
// With WithFencing(true) every write acquisition gets a token (Token)
// larger than every earlier write's, agreed and stored through the quorum
// as a Mutex's (the counter is the name's, shared with fenced Mutexes on
// the name), and a read acquisition gets the largest counter its quorum
// holds: the token of the last write it follows, at least every write
// released before it was acquired and below every write acquired after
// it was released (see docs/rwmutex.md).
//
// With a plain Mutex, or a redsync v4 process, on the same name: the key
// is the name, so a Mutex is excluded by readers (the key holds the
// readers' mark) and by writers, and excludes both while it holds: to an
// RWMutex it is a writer that does not wait its turn. It does not claim a
// turn, and an RWMutex writer does not join the Mutex's fleet queue.
// Releases wake both ways: a Mutex's Unlock wakes the RWMutex's waiters,
// and the releases announced above wake a waiting Mutex.
//
// An Observer (WithObserver) sees OpRLock, OpRUnlock and OpRExtend for
// the read lock, OpRWLock, OpRWUnlock and OpRWExtend for the write lock,
// and OpKeepAlive for KeepAlive's extensions of either.
//
// Like a Mutex, an RWMutex stands for one holder: it holds a read lock or
// the write lock at a time; use one per goroutine. Name, Until and Token
// may be called from any goroutine at any time.
type RWMutex struct {
	name       string
	readersKey string
	// m carries the configuration (the options) and runs the rounds; it
	// never locks.
	m *Mutex
	// spec describes this RWMutex's waiters to the process's queues.
	spec handoff.Spec
	// args are script arguments that do not change, boxed once.
	args struct{ readersKey, mark, fenced any }

	mu    sync.Mutex // guards held and token
	held  rwHeld
	token uint64 // the fencing token of the last acquisition; kept after unlock
}

// rwHeld is what an RWMutex holds, guarded by RWMutex.mu.
type rwHeld struct {
	value      string
	write      bool
	until      time.Time
	acquiredAt time.Time // the start of the attempt that acquired value
	try        *rwTry    // the try that acquired value
	keeper     *keeper   // the background extension, while KeepAlive runs
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

// newRWMutex returns the RWMutex on name whose configuration and rounds
// are m's.
func newRWMutex(name string, m *Mutex) *RWMutex {
	rw := &RWMutex{name: name, m: m, readersKey: rwReadersKey(name)}
	rw.spec = handoff.Spec{Name: name, Owner: rw}
	rw.args.readersKey, rw.args.mark, rw.args.fenced = rw.readersKey, rwReadersMark, ""
	if m.cfg.fencing {
		rw.args.fenced = "1"
	}
	if m.invalid == nil && m.cfg.valueGiven {
		m.invalid = &ArgumentError{Arg: "WithValue", Problem: "an RWMutex makes a new value for every lock"}
	}
	return rw
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

// Token returns the fencing token of the RWMutex's last acquisition, with
// WithFencing(true): for the write lock, a number larger than every
// earlier write acquisition's of the name (by an RWMutex or a fenced
// Mutex); for a read lock, the token of the last write that a quorum of
// servers showed it (0 when none did), which is at least every write
// released before the read lock was acquired. It is 0 before the first
// acquisition and without fencing, and keeps its value after the unlock.
// Tokens are compared, never counted with (see Mutex.Token).
func (rw *RWMutex) Token() uint64 {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.token
}

// RLock acquires a read lock: RLockContext with context.Background().
func (rw *RWMutex) RLock() error { return rw.RLockContext(context.Background()) }

// RLockContext acquires a read lock, shared with other readers, trying up
// to WithTries times, waiting at most the retry delay between tries (less
// when woken by a release, see RWMutex); it gives up when ctx ends (the
// error then matches ErrFailed and ctx.Err()). On failure it leaves
// nothing on any server. An RWMutex that holds a lock already, a nil ctx
// or a bad option is an *ArgumentError.
func (rw *RWMutex) RLockContext(ctx context.Context) error {
	return rw.lock(ctx, false, rw.m.cfg.tries)
}

// TryRLock tries once to acquire a read lock: TryRLockContext with
// context.Background().
func (rw *RWMutex) TryRLock() error { return rw.TryRLockContext(context.Background()) }

// TryRLockContext tries once to acquire a read lock.
func (rw *RWMutex) TryRLockContext(ctx context.Context) error { return rw.lock(ctx, false, 1) }

// RUnlock releases the read lock: RUnlockContext with
// context.Background().
func (rw *RWMutex) RUnlock() (bool, error) { return rw.RUnlockContext(context.Background()) }

// RUnlockContext releases the read lock, stopping its KeepAlive first,
// and reports whether a quorum of servers released it. It returns
// ErrNotHeld, sending nothing, when the RWMutex holds no read lock.
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

// TryLock tries once to acquire the write lock: TryLockContext with
// context.Background().
func (rw *RWMutex) TryLock() error { return rw.TryLockContext(context.Background()) }

// TryLockContext tries once to acquire the write lock.
func (rw *RWMutex) TryLockContext(ctx context.Context) error { return rw.lock(ctx, true, 1) }

// Unlock releases the write lock: UnlockContext with
// context.Background().
func (rw *RWMutex) Unlock() (bool, error) { return rw.UnlockContext(context.Background()) }

// UnlockContext releases the write lock, stopping its KeepAlive first,
// and reports whether a quorum of servers released it. It returns
// ErrNotHeld, sending nothing, when the RWMutex holds no write lock.
func (rw *RWMutex) UnlockContext(ctx context.Context) (bool, error) {
	return rw.unlock(ctx, true)
}

// rwTry is one value's acquisition on the servers: what each server
// replied, and whether the value was given up (after which a late reply
// that admitted it is undone at once). A writer whose claims hold keeps
// its try, and value, from one attempt to the next.
type rwTry struct {
	value     string
	write     bool
	abandoned atomic.Bool
	// hold tracks the replies still on their way, which a write-back of
	// the fencing token waits for.
	hold *holding

	mu    sync.Mutex // guards the fields below
	start time.Time  // when the last attempt started; zero before the first
	// codes[node] is the last reply code of the server, -1 for none;
	// touched[node] reports that it replied with something else than a
	// refusal at least once (or failed), so that it may hold the value.
	codes   []int64
	touched []bool
	// With fencing, what the servers that admitted the current attempt
	// read: reads for a writer, counter (the largest) for a reader; and
	// keyInUse, the error of a counter key that holds something else.
	reads    *fenceReads
	counter  uint64
	keyInUse error
}
