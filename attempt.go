package redsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/quorum"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// lockAttempt is the outcome of one attempt to acquire the lock.
type lockAttempt struct {
	res   roundResult
	start time.Time // zero when no server was contacted
	held  bool
	// freeIn is how long after start a quorum of servers must be free of
	// the key that refused this attempt, by their replies; -1 if unknown.
	freeIn time.Duration
	// released is closed when what a failed attempt set is released.
	released <-chan struct{}
	// handedOver: the lock was handed over by a release (see fleet.go).
	handedOver bool
	// set are the servers that an attemptQueued that failed set the key
	// on, valid until setUntil, which it kept.
	set      quorum.Set
	setUntil time.Time
}

// An attemptKind is what an attempt asks of each server.
type attemptKind uint8

const (
	// attemptPlain is redsync's try: a SET NX, nothing more.
	attemptPlain attemptKind = iota
	// attemptPlainTTL is attemptPlain that, refused, asks for the key's
	// time to live: the first try of a Lock that may wait for it.
	attemptPlainTTL
	// attemptAfterWait is a waiter's attempt: it may also take over a
	// released key held for waiters, and tells the key's time to live.
	attemptAfterWait
	// attemptQueued is the attempt of a waiter in the fleet queue (see
	// fleet.go): it also queues the value on a server that refuses, and
	// what it set is kept when it fails, for the servers' hand-overs to
	// complete.
	attemptQueued
)

// attempt tries once to acquire the lock with a fresh value, or, with
// attemptQueued, with the stint's value. w, when not nil, is the Lock
// call's place in the queue of this process. count is the Lock call's
// count before this attempt, for the Observer.
func (m *Mutex) attempt(ctx context.Context, kind attemptKind, w *waiter, count lockCount, stint *fleetStint) (lockAttempt, error) {
	if w != nil {
		w.attempting(time.Now())
	}
	if err := ctx.Err(); err != nil {
		return lockAttempt{res: roundResult{ctxErr: err}}, nil
	}
	r, err := m.newAcquireRound(kind, stint)
	if err != nil {
		return lockAttempt{}, err
	}
	watch := m.watchRound(ctx, OpLock, count.attempts+1)
	res := m.round(ctx, r.acquireOn, watch, acquireNotSent(r.hold))
	if err := r.fencingFailure(); err != nil {
		// Fencing cannot work with this name on these servers: no later
		// try would do better.
		awaitReleased(m.releaseHold(r.hold), m.opTimeout())
		if m.obs != nil {
			res.err = err
			m.observeAttempt(ctx, lockAttempt{res: res, start: r.start, freeIn: -1}, count)
		}
		return lockAttempt{start: r.start}, err
	}
	a := r.result(ctx, res)
	if m.obs != nil {
		m.observeAttempt(ctx, a, count)
	}
	return a, nil
}

// acquireRound is one attempt's acquire on every server: what the
// requests need, and where they leave what they learn, possibly after the
// round returned.
type acquireRound struct {
	m      *Mutex
	kind   attemptKind
	value  string
	ticket any // the stint's place in the fleet queue, for attemptQueued
	hold   *holding
	start  time.Time
	// freeAfter[node] is 1 + the milliseconds until the node is free of the
	// key (1 when this attempt set it there), or 0 when unknown; written
	// atomically by the requests.
	freeAfter []int64
	// reads gathers the fencing counters and clocks of the servers that
	// granted the acquire, with fencing; nil without.
	reads *fenceReads
}

// newAcquireRound prepares an attempt of kind with a fresh value, so that
// a late release of an earlier attempt can never delete the key a later
// one set, or with the value of stint (attemptQueued), whose hold it
// shares.
func (m *Mutex) newAcquireRound(kind attemptKind, stint *fleetStint) (acquireRound, error) {
	r := acquireRound{m: m, kind: kind}
	if stint != nil {
		r.value, r.hold, r.ticket, r.reads = stint.value, stint.hold, stint.ticket, stint.reads
		r.hold.resend(len(m.nodes.pools))
	} else {
		var err error
		if r.value, err = m.cfg.genValueFunc(); err != nil {
			return r, fmt.Errorf("redsync: making the lock value: %w", err)
		}
		r.hold = newHolding(r.value, len(m.nodes.pools))
	}
	r.start = time.Now()
	if stint != nil {
		// An array of the attempt's own: the hold's serves every attempt
		// of the stint, and what an earlier one recorded there (or its
		// late replies) would pass for this attempt's (see setNodes).
		r.freeAfter = make([]int64, len(m.nodes.pools))
	} else if len(m.nodes.pools) <= len(r.hold.freeAfter) {
		r.freeAfter = r.hold.freeAfter[:len(m.nodes.pools)]
	} else {
		r.freeAfter = make([]int64, len(m.nodes.pools))
	}
	if m.cfg.fencing && r.reads == nil {
		r.reads = &fenceReads{}
	}
	return r, nil
}

// acquireOn is the attempt's request to one server (a nodeOp).
func (r acquireRound) acquireOn(ctx context.Context, node int, pool redis.Pool) (bool, error) {
	var (
		ok  bool
		ttl time.Duration
		err error
	)
	if r.reads != nil {
		ok, ttl, err = r.m.fencedAcquire(ctx, node, pool, r.value, r.kind, r.ticket, r.reads)
	} else {
		ok, ttl, err = r.m.acquire(ctx, pool, r.value, r.kind, r.ticket)
	}
	switch {
	case ok:
		atomic.StoreInt64(&r.freeAfter[node], 1)
	case err == nil && ttl >= 0:
		atomic.StoreInt64(&r.freeAfter[node], 1+ttl.Milliseconds())
	}
	queued := r.kind == attemptQueued
	if !ok && err == nil && r.hold.refused.refused(node) {
		r.m.reassert(node, pool, r.value, r.hold, r.start)
	}
	// Recorded before the reply counts, so that whoever gives the hold up
	// releases this server or learns it must. A queued value may be
	// handed the key later: its server is released too.
	if (ok || (queued && err == nil) || (err != nil && !neverSent(err))) && !r.hold.record(node) {
		// Given up already: nobody waits for this reply.
		r.m.releaseLate(pool, r.value)
	}
	r.hold.acquireReplied(node)
	return ok, err
}

// acquireNotSent is an attempt's skip for round: an acquire not sent sets
// nothing.
func acquireNotSent(hold *holding) func(node int) bool {
	return func(node int) bool {
		hold.acquireReplied(node)
		return true
	}
}

// fencingFailure returns the error that makes fencing impossible with this
// name on these servers, if a reply told one.
func (r acquireRound) fencingFailure() error {
	if r.reads == nil {
		return nil
	}
	return r.reads.failure()
}

// result decides the attempt from its round's result: the lock is held,
// or what the attempt set is being released.
func (r acquireRound) result(ctx context.Context, res roundResult) lockAttempt {
	a := lockAttempt{res: res, start: r.start, freeIn: -1}
	until := r.start.Add(r.m.cfg.expiry - r.m.drift())
	granted := res.n >= r.m.nodes.quorum && res.ctxErr == nil && time.Now().Before(until)
	var token uint64
	stored := true
	if granted && r.reads != nil {
		token, stored = r.storeToken(ctx, &a)
		granted = stored && time.Now().Before(until)
	}
	for _, node := range r.hold.refused.decide(granted && r.reads == nil) {
		r.m.reassert(node, r.m.nodes.pools[node], r.value, r.hold, r.start)
	}
	if granted {
		r.m.setHeld(r.value, token, until, r.start, r.hold)
		a.held = true
		return a
	}
	if r.kind == attemptQueued {
		// Kept: the fleet queue's hand-overs may complete a quorum (see
		// fleet.go, which gives the hold up when they do not).
		a.setUntil = until
		a.set = r.setNodes()
		a.freeIn = quorumFreeIn(r.freeAfter, r.m.nodes.quorum)
		return a
	}
	a.released = r.m.releaseHold(r.hold)
	if stored {
		// (After a failed write-back, the retry waits as usual rather
		// than at once.)
		a.freeIn = quorumFreeIn(r.freeAfter, r.m.nodes.quorum)
	}
	return a
}

// storeToken agrees the fencing token of a granted attempt a, which counts
// only once a quorum stores it (see WithFencing). When no quorum does, it
// reports false and records why in a.
func (r acquireRound) storeToken(ctx context.Context, a *lockAttempt) (token uint64, stored bool) {
	token, stored = r.reads.token()
	if stored {
		return token, true
	}
	wb := r.m.writeBackToken(ctx, r.value, token, r.hold)
	switch {
	case wb.ctxErr != nil:
		a.res.ctxErr = wb.ctxErr
		return token, false
	case wb.n < r.m.nodes.quorum:
		a.res.err = errors.Join(ErrTokenNotStored, wb.err)
		return token, false
	}
	return token, true
}

// setHeld records the lock as held with value and token until until, by
// the attempt that started at start with hold.
func (m *Mutex) setHeld(value string, token uint64, until, start time.Time, hold *holding) {
	m.mu.Lock()
	m.held.value, m.held.token, m.held.until, m.held.acquiredAt, m.held.hold, m.held.released = value, token, until, start, hold, false
	m.mu.Unlock()
}

// setNodes returns the servers on which the round set the key.
func (r acquireRound) setNodes() quorum.Set {
	var set quorum.Set
	for node := range r.freeAfter {
		if atomic.LoadInt64(&r.freeAfter[node]) == 1 {
			set.Add(node)
		}
	}
	return set
}

// observeAttempt reports a decided attempt; m.obs is not nil.
func (m *Mutex) observeAttempt(ctx context.Context, a lockAttempt, count lockCount) {
	e := AttemptEvent{
		Name:       m.name,
		Attempt:    count.attempts + 1,
		Try:        count.tries,
		Duration:   time.Since(a.start),
		Agreed:     a.res.n,
		Quorum:     m.nodes.quorum,
		Acquired:   a.held,
		Canceled:   a.res.ctxErr != nil,
		HandedOver: a.handedOver,
	}
	switch {
	case a.held:
	case a.res.ctxErr != nil:
		e.Err = errors.Join(a.res.ctxErr, a.res.err)
	case a.res.err != nil:
		e.Err = a.res.err
	default:
		e.Err = ErrFailed // a quorum agreed too late
	}
	m.obs.Attempt(ctx, e)
}

// quorumFreeIn returns when a quorum of servers is free by freeAfter (see
// attempt), or -1 when fewer than a quorum told.
func quorumFreeIn(freeAfter []int64, quorum int) time.Duration {
	known := make([]int64, 0, len(freeAfter))
	for i := range freeAfter {
		if v := atomic.LoadInt64(&freeAfter[i]); v > 0 {
			known = append(known, v-1)
		}
	}
	if len(known) < quorum {
		return -1
	}
	sort.Slice(known, func(i, j int) bool { return known[i] < known[j] })
	return time.Duration(known[quorum-1]) * time.Millisecond
}

// acquire sets the key on one server if it is missing, or, for a waiter
// (attemptAfterWait), also if it holds the hand-off placeholder. When the
// server refuses, ttl is the key's remaining time to live, or -1 when
// unknown (or not asked for: attemptPlain does not).
func (m *Mutex) acquire(ctx context.Context, pool redis.Pool, value string, kind attemptKind, ticket any) (ok bool, ttl time.Duration, err error) {
	defer recoverPanic(&err)
	if _, ours := pool.(redis.Subscriber); !ours {
		// A Pool of the user's own (none of this project's adapters)
		// sees only the calls redsync makes: a SET NX per try.
		kind = attemptPlain
	}
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, -1, err
	}
	defer conn.Close()
	var reply any
	switch kind {
	case attemptQueued:
		reply, err = conn.Eval(scripts.AcquireQueued, m.args.name, m.args.queueKey, m.args.entriesKey, m.args.queueFenceKey, value, m.args.expiryMillis, ticket, m.args.leaseMillis, "", fenceCounterTTLMillis)
	case attemptAfterWait:
		reply, err = conn.Eval(scripts.AcquireAfterWait, m.args.name, value, m.args.expiryMillis, handoffMarker)
	default:
		// The first try is the plain SET NX of redsync: the fast path of
		// an uncontended lock, one command.
		ok, err = conn.SetNX(m.name, value, m.cfg.expiry)
		if ok || err != nil || kind != attemptPlainTTL {
			return ok, -1, err
		}
		ttl, err = conn.PTTL(m.name)
		if err != nil || ttl < 0 {
			return false, -1, nil
		}
		return false, ttl, nil
	}
	if err != nil {
		return false, -1, err
	}
	got, err := scripts.ParseAcquireAfterWait(reply)
	if err != nil {
		return false, -1, err
	}
	return got.Acquired, got.TTL, nil
}
