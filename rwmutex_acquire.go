package redsync

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// lock is RLockContext and LockContext, observed as OpRLock or OpRWLock.
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
	op := OpRLock
	if write {
		op = OpRWLock
	}
	return m.observeOp(ctx, op, tries, func(ctx context.Context, e *DoneEvent) error {
		q := rwAcquirer{rw: rw, ctx: ctx, write: write, tries: tries, op: op, count: lockCount{tries: 1}}
		err := q.run()
		q.leave(err)
		e.Tries, e.Attempts = q.count.tries, q.count.attempts
		if err == nil {
			rw.mu.Lock()
			e.Validity, e.Token = time.Until(rw.held.until), rw.token
			rw.mu.Unlock()
		}
		return err
	})
}

// rwAcquirer is one RLock or Lock call: its try, its count of tries and
// attempts, and its place in the queue of this process's waiters.
type rwAcquirer struct {
	rw    *RWMutex
	ctx   context.Context
	write bool
	tries int // the tries the call may make
	op    Op  // OpRLock or OpRWLock, for the Observer
	count lockCount
	try   *rwTry
	// w is the call's place in the queue for the name, once it waits.
	w     *waiter
	timer *time.Timer // nil until the first wait
	// periodEnd is when the retry delay being waited ends; zero before it
	// starts.
	periodEnd time.Time
	last      error // the last attempt's error
	// retake: the last attempt's try must be given up even if it claims
	// a quorum (its fencing token was not stored).
	retake bool
}

// run attempts until an attempt acquires the lock (nil), the tries run
// out or ctx ends; whatever a failed call set on the servers is released.
func (q *rwAcquirer) run() error {
	if err := q.freshTry(); err != nil {
		return err
	}
	for {
		held, err := q.attempt()
		switch {
		case held:
			return nil
		case err != nil:
			q.rw.giveUp(q.ctx, q.try)
			return err
		case q.ctx.Err() != nil:
			q.rw.giveUp(q.ctx, q.try)
			return failedAfter(q.last, q.ctx.Err())
		case q.count.tries >= q.tries:
			q.rw.giveUp(q.ctx, q.try)
			return failedAfter(q.last, nil)
		}
		if !q.keepsTurn() {
			// Not the writer whose turn it is: give the servers up, as
			// a failed Redlock try does, so that no claims deadlock.
			q.rw.giveUp(q.ctx, q.try)
			if err := q.freshTry(); err != nil {
				return err
			}
		}
		if !q.wait() {
			q.rw.giveUp(q.ctx, q.try)
			return failedAfter(q.last, q.ctx.Err())
		}
	}
}

// freshTry starts a try with a value of its own. A try given up is
// released with a round that returns at a quorum; its release may still
// be on its way to the other servers, and must not find a later try's
// key there under the same value (it would delete it, and the later
// try's holder would hold on fewer servers than it counted).
func (q *rwAcquirer) freshTry() error {
	value, err := q.rw.m.cfg.genValueFunc()
	if err != nil {
		return fmt.Errorf("redsync: making the lock value: %w", err)
	}
	q.try = q.rw.newTry(value, q.write)
	return nil
}

// keepsTurn reports whether the try is kept for the next attempt: a
// writer's whose claims (or key) hold on a quorum.
func (q *rwAcquirer) keepsTurn() bool {
	return q.write && !q.retake && q.try.claimsQuorum(q.rw.m.nodes.quorum)
}

// attempt is one round of the try's acquire on every server; it reports
// whether the lock is held, or an error that ends the call (fencing that
// cannot work with this name).
func (q *rwAcquirer) attempt() (bool, error) {
	rw, m := q.rw, q.rw.m
	if q.w != nil {
		q.w.attempting(time.Now())
	}
	try := q.try
	try.newRound(len(m.nodes.pools), m.cfg.fencing)
	count := q.count
	q.count.attempts++
	q.retake = false
	start := time.Now()
	res := m.round(q.ctx, rw.acquireOn(try), m.watchRound(q.ctx, q.op, count.attempts+1), nil)
	a := lockAttempt{res: res, start: start, freeIn: -1}
	err := try.fenceFailure()
	if err == nil && res.n >= m.nodes.quorum && res.ctxErr == nil && time.Now().Before(rw.validUntil(start)) {
		a.held = rw.acquired(q.ctx, try, start, &a)
	}
	if !a.held && a.res.err != nil {
		q.last = a.res.err
		q.retake = errors.Is(a.res.err, ErrTokenNotStored)
	}
	if m.obs != nil {
		if err != nil {
			a.res.err = err
		}
		m.observeAttempt(q.ctx, a, count)
	}
	return a.held, err
}

// acquired finishes an attempt that a quorum admitted at start: with
// fencing it agrees the token (a writer's is stored back to a quorum
// first), and it records the lock as held if it is still valid. A writer
// whose token was not stored gives its try up (a.res says why).
func (rw *RWMutex) acquired(ctx context.Context, try *rwTry, start time.Time, a *lockAttempt) bool {
	m := rw.m
	var token uint64
	if m.cfg.fencing {
		try.mu.Lock()
		reads, counter := try.reads, try.counter
		try.mu.Unlock()
		token = counter
		if try.write {
			token, _ = reads.token()
			wb := m.writeBackToken(ctx, try.value, token, try.hold)
			switch {
			case wb.ctxErr != nil:
				a.res.ctxErr = wb.ctxErr
				return false
			case wb.n < m.nodes.quorum:
				a.res.err = errors.Join(ErrTokenNotStored, wb.err)
				return false
			}
		}
	}
	until := rw.validUntil(start)
	if !time.Now().Before(until) {
		return false
	}
	rw.mu.Lock()
	rw.held = rwHeld{value: try.value, write: try.write, until: until, acquiredAt: start, try: try}
	rw.token = token
	rw.mu.Unlock()
	return true
}

// validUntil is the validity of an acquisition or extension started at
// start.
func (rw *RWMutex) validUntil(start time.Time) time.Time {
	return start.Add(rw.m.cfg.expiry - rw.m.drift())
}

// wait waits for the next attempt: the end of the retry delay, a wake-up
// by a release, or, for a writer that keeps its turn, the renewal of its
// claims. It returns false when ctx ended. Only the end of a retry delay
// spends a try.
func (q *rwAcquirer) wait() bool {
	m := q.rw.m
	now := time.Now()
	if q.w == nil && m.cfg.handoff && m.rs.canListen {
		q.w = &waiter{wake: make(chan struct{}, 1)}
		m.rs.handoff.start(m.rs).Join(&q.w.w, q.rw.spec, q.try.roundStart(), q.w.wake)
	}
	if q.periodEnd.IsZero() {
		q.periodEnd = now.Add(max(m.cfg.delayFunc(q.count.tries), 0))
	}
	wakeAt := q.periodEnd
	if q.keepsTurn() {
		// The claims end one expiry after the last attempt renewed them.
		wakeAt = minTime(wakeAt, now.Add(m.cfg.expiry/3))
	}
	if q.timer == nil {
		q.timer = time.NewTimer(time.Until(wakeAt))
	} else {
		q.timer.Reset(time.Until(wakeAt))
	}
	var wake chan struct{}
	if q.w != nil {
		q.w.idle()
		wake = q.w.wake
	}
	select {
	case <-q.ctx.Done():
		return false
	case <-wake:
		if !q.timer.Stop() {
			<-q.timer.C
		}
		return true
	case <-q.timer.C:
	}
	if !wakeAt.Before(q.periodEnd) {
		q.count.tries++
		q.periodEnd = time.Time{}
	}
	return true
}

// leave ends the call, whose result is err: it stops the timer and leaves
// the queue. A reader that got in wakes the next waiter at once (readers
// share); a writer's lock makes the announcements heard until its
// validity ends late ones of the releases it took.
func (q *rwAcquirer) leave(err error) {
	if q.timer != nil {
		q.timer.Stop()
	}
	if q.w == nil {
		return
	}
	if err == nil && q.write {
		q.w.leave(true, q.rw.Until())
		return
	}
	q.w.leave(false, time.Time{})
}

// newTry returns a try of value that no server has replied to yet.
func (rw *RWMutex) newTry(value string, write bool) *rwTry {
	n := len(rw.m.nodes.pools)
	t := &rwTry{value: value, write: write, hold: newHolding(value, n), codes: make([]int64, n), touched: make([]bool, n)}
	for i := range t.codes {
		t.codes[i] = -1
	}
	return t
}

// newRound prepares the try for an attempt on n servers: their replies
// are pending, and, with fencing, what they read is the new round's.
func (t *rwTry) newRound(n int, fenced bool) {
	t.hold.resend(n)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start = time.Now()
	if fenced {
		t.reads, t.counter = &fenceReads{}, 0
	}
}

// roundStart returns when the try's last attempt started.
func (t *rwTry) roundStart() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start
}

// claimsQuorum reports whether a quorum of servers set the writer's key
// or keep its claim.
func (t *rwTry) claimsQuorum(quorum int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.codes {
		if c == scripts.RWAdmitted || c == scripts.RWClaimed {
			n++
		}
	}
	return n >= quorum
}

// record notes server node's reply to the current round, and what it
// read with fencing.
func (t *rwTry) record(node int, got scripts.RWAcquireReply, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.codes[node], t.touched[node] = -1, true
		return
	}
	t.codes[node] = got.Code
	if got.Code != scripts.RWRefused {
		t.touched[node] = true
	}
	if got.Fenced && t.reads != nil {
		t.counter = max(t.counter, got.Counter)
		t.reads.AddFloor(max(got.Counter+1, got.Clock))
	}
}

// mayHold reports whether server node may hold the try's value or claim.
func (t *rwTry) mayHold(node int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.touched[node] || t.codes[node] == -1
}

// fenceFailure returns the error of a fencing counter key in use, if a
// reply told one.
func (t *rwTry) fenceFailure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keyInUse
}

// acquireOn is the acquire of try on one server.
func (rw *RWMutex) acquireOn(try *rwTry) nodeOp {
	m := rw.m
	script, name := scripts.RWReadAcquire, "rw_read_acquire"
	if try.write {
		script, name = scripts.RWWriteAcquire, "rw_write_acquire"
	}
	args := []any{m.args.name, rw.args.readersKey, m.args.fenceKey, try.value, m.args.expiryMillis, rw.args.mark, rw.args.fenced}
	return func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		defer try.hold.acquireReplied(node)
		reply, err := m.eval(ctx, pool, script, args...)
		var got scripts.RWAcquireReply
		if err == nil {
			got, err = scripts.ParseRWAcquire(name, reply)
		}
		if err == nil && got.NotCounter {
			err = m.fenceKeyInUse(node)
			try.mu.Lock()
			try.keyInUse = err
			try.mu.Unlock()
		}
		try.record(node, got, err)
		if (err != nil || got.Code != scripts.RWRefused) && try.abandoned.Load() {
			// A late reply for a value given up: the release sent to
			// this server may have run before this acquire did.
			bounded, cancel := context.WithTimeout(context.Background(), m.opTimeout())
			_, _ = rw.releaseOn(try, nil)(bounded, node, pool)
			cancel()
		}
		if err != nil {
			return false, err
		}
		return got.Code == scripts.RWAdmitted, nil
	}
}

// releaseOn is the release of try on one server; freed, when not nil,
// counts the servers whose key the release freed.
func (rw *RWMutex) releaseOn(try *rwTry, freed *atomic.Int32) nodeOp {
	m := rw.m
	script, name := scripts.RWReadRelease, "rw_read_release"
	if try.write {
		script, name = scripts.RWWriteRelease, "rw_write_release"
	}
	args := []any{m.args.name, rw.args.readersKey, try.value, m.args.channel, rw.args.mark, m.args.shardedChannel}
	return func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, script, args...)
		if err != nil {
			return false, err
		}
		code, err := scripts.ParseRW(name, reply)
		if freed != nil && (try.write && code == scripts.RWReleased || code == scripts.RWReleasedFreed) {
			freed.Add(1)
		}
		return code != scripts.RWRefused, err
	}
}

// giveUp releases try on every server that may hold it, on a context
// detached from the caller's cancellation: a failed or cancelled lock
// leaves nothing.
func (rw *RWMutex) giveUp(ctx context.Context, try *rwTry) {
	try.abandoned.Store(true)
	if try.roundStart().IsZero() {
		return // never sent
	}
	release := rw.releaseOn(try, nil)
	rw.m.roundAtQuorum(context.WithoutCancel(ctx), func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		if !try.mayHold(node) {
			return true, nil // it refused every request: nothing to release
		}
		return release(ctx, node, pool)
	}, nil, nil)
}

// unlock is RUnlockContext and UnlockContext, observed as OpRUnlock or
// OpRWUnlock.
func (rw *RWMutex) unlock(ctx context.Context, write bool) (bool, error) {
	m := rw.m
	if err := m.checkActive(ctx, "release"); err != nil {
		return false, err
	}
	op := OpRUnlock
	if write {
		op = OpRWUnlock
	}
	var ok bool
	err := m.observeOp(ctx, op, 0, func(ctx context.Context, e *DoneEvent) error {
		var err error
		ok, err = rw.release(ctx, write, op, e)
		return err
	})
	return ok, err
}

// release is unlock once observed.
func (rw *RWMutex) release(ctx context.Context, write bool, op Op, e *DoneEvent) (bool, error) {
	m := rw.m
	rw.mu.Lock()
	held := rw.held
	rw.mu.Unlock()
	if held.value == "" || held.write != write {
		return false, ErrNotHeld
	}
	// Nothing extends the lock from now on.
	rw.stopKeepAlive(ErrUnlocked)
	rw.mu.Lock()
	if rw.held.value != held.value {
		rw.mu.Unlock()
		return false, ErrNotHeld // released meanwhile by another goroutine
	}
	rw.held = rwHeld{}
	rw.mu.Unlock()
	e.Held = time.Since(held.acquiredAt)
	held.try.abandoned.Store(true)
	var freed atomic.Int32
	res := m.roundAtQuorum(ctx, rw.releaseOn(held.try, &freed), m.watchRound(ctx, op, 0), nil)
	if res.n >= m.nodes.quorum {
		if m.rs.canListen && int(freed.Load()) >= m.nodes.quorum {
			// The head waiter of this process need not wait for the
			// servers' announcements.
			m.rs.handoff.releasedHere(rw.name)
		}
		return true, nil
	}
	kind := "read"
	if write {
		kind = "write"
	}
	return false, errors.Join(fmt.Errorf("redsync: the %s lock on %q was released on %d servers, %d needed (it expired on the others, or they failed)",
		kind, rw.name, res.n, m.nodes.quorum), res.err, res.ctxErr)
}
