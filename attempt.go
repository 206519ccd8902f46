package redsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

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
	// handedOver: the attempt took a hand-over (see takeOffer).
	handedOver bool
}

// attempt tries once to acquire the lock with a fresh value (next, when
// not "", made for it). A waiter's attempt (afterWait) may take over a
// released key held for waiters; w, when not nil, is its place in the
// queue, and when a releaser handed the lock over to w, attempt takes that
// instead. count is the Lock call's count before this attempt, for the
// Observer.
func (m *Mutex) attempt(ctx context.Context, afterWait, wantTTL bool, w *waiter, count lockCount, next string) (lockAttempt, error) {
	if w != nil {
		if o := w.attempting(time.Now()); o != nil {
			return m.takeOffer(ctx, w, o, count), nil
		}
	}
	if err := ctx.Err(); err != nil {
		return lockAttempt{res: roundResult{ctxErr: err}}, nil
	}
	// A fresh value per attempt: a late release of an earlier attempt can
	// never delete the key a later one set.
	value := next
	if value == "" {
		var err error
		if value, err = m.cfg.genValueFunc(); err != nil {
			return lockAttempt{}, fmt.Errorf("redsync: making the lock value: %w", err)
		}
	}
	hold := newHolding(value, len(m.nodes.pools))
	start := time.Now()
	// freeAfter[node] is 1 + the milliseconds until the node is free of the
	// key (1 when this attempt set it there), or 0 when unknown; written by
	// the node goroutines, possibly after round returned.
	var freeAfter []int64
	if len(m.nodes.pools) <= len(hold.freeAfter) {
		freeAfter = hold.freeAfter[:len(m.nodes.pools)]
	} else {
		freeAfter = make([]int64, len(m.nodes.pools))
	}
	// reads gathers the fencing counters and clocks of the servers that
	// granted the acquire, with fencing.
	var reads *fenceReads
	if m.cfg.fencing {
		reads = &fenceReads{}
	}
	watch := m.watchRound(ctx, OpLock, count.attempts+1)
	res := m.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		var (
			ok  bool
			ttl time.Duration
			err error
		)
		if reads != nil {
			ok, ttl, err = m.fencedAcquire(ctx, node, pool, value, afterWait, reads)
		} else {
			ok, ttl, err = m.acquire(ctx, pool, value, afterWait, wantTTL)
		}
		switch {
		case ok:
			atomic.StoreInt64(&freeAfter[node], 1)
		case err == nil && ttl >= 0:
			atomic.StoreInt64(&freeAfter[node], 1+ttl.Milliseconds())
		}
		if !ok && err == nil && hold.refused.refused(node) {
			m.reassert(node, pool, value, hold, start)
		}
		// Recorded before the reply counts, so that whoever gives the
		// hold up releases this server or learns it must.
		if (ok || (err != nil && !neverSent(err))) && !hold.record(node) {
			// Given up already: nobody waits for this reply.
			m.releaseLate(pool, value)
		}
		hold.acquireReplied(node)
		return ok, err
	}, watch, func(node int) bool {
		// An acquire not sent sets nothing.
		hold.acquireReplied(node)
		return true
	})
	a := lockAttempt{res: res, start: start, freeIn: -1}
	if reads != nil {
		if err := reads.failure(); err != nil {
			// Fencing cannot work with this name on these servers: no
			// later try would do better.
			awaitReleased(m.releaseHold(hold), m.opTimeout())
			if m.obs != nil {
				a.res.err = err
				m.observeAttempt(ctx, a, count)
			}
			return lockAttempt{start: start}, err
		}
	}
	until := start.Add(m.cfg.expiry - m.drift())
	granted := res.n >= m.nodes.quorum && res.ctxErr == nil && time.Now().Before(until)
	var (
		token          uint64
		notWrittenBack bool
	)
	if granted && reads != nil {
		// The token counts only once a quorum stores it (see WithFencing).
		var stored bool
		token, stored = reads.token()
		wb := roundResult{n: m.nodes.quorum}
		if !stored {
			wb = m.writeBackToken(ctx, value, token, hold)
		}
		switch {
		case wb.ctxErr != nil:
			a.res.ctxErr = wb.ctxErr
			granted, notWrittenBack = false, true
		case wb.n < m.nodes.quorum:
			a.res.err = errors.Join(ErrTokenNotStored, wb.err)
			granted, notWrittenBack = false, true
		default:
			granted = time.Now().Before(until)
		}
	}
	for _, node := range hold.refused.decide(granted && reads == nil) {
		m.reassert(node, m.nodes.pools[node], value, hold, start)
	}
	if granted {
		m.mu.Lock()
		m.held.value, m.held.token, m.held.until, m.held.acquiredAt, m.held.hold, m.held.released = value, token, until, start, hold, false
		m.mu.Unlock()
		a.held = true
	} else {
		a.released = m.releaseHold(hold)
		if !notWrittenBack {
			// (After a failed write-back, the retry waits as usual
			// rather than at once.)
			a.freeIn = quorumFreeIn(freeAfter, m.nodes.quorum)
		}
	}
	if m.obs != nil {
		m.observeAttempt(ctx, a, count)
	}
	return a, nil
}

// takeOffer waits for the hand-over o that a releaser made to w, and takes
// the lock when it was granted. When it was not, what it set is released
// and w tries again at once: the lock was released too. When ctx ends
// first, the offer is abandoned, to be released once settled.
func (m *Mutex) takeOffer(ctx context.Context, w *waiter, o *handOffer, count lockCount) lockAttempt {
	select {
	case <-o.done:
	case <-ctx.Done():
		o.abandon()
		return lockAttempt{res: roundResult{ctxErr: ctx.Err()}}
	}
	a := lockAttempt{start: o.start, freeIn: -1, res: roundResult{n: int(atomic.LoadInt32(&o.handed))}, handedOver: true}
	if until := o.grantedTil; !until.IsZero() {
		m.mu.Lock()
		m.held.value, m.held.token, m.held.until, m.held.acquiredAt, m.held.hold, m.held.released = o.value, 0, until, o.start, o.hold, false
		m.mu.Unlock()
		a.held = true
	} else {
		// Every server's reply first (the releaser's round returned at
		// its own quorum), so that the release covers every server that
		// handed over, and the next try finds them free.
		wait, cancel := context.WithTimeout(context.Background(), m.opTimeout())
		for node := range m.nodes.pools {
			o.hold.awaitReply(wait, node)
		}
		cancel()
		a.released = m.releaseHold(o.hold)
		awaitReleased(a.released, m.opTimeout())
		w.signal()
	}
	if m.obs != nil {
		m.observeAttempt(ctx, a, count)
	}
	return a
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
// (afterWait), also if it holds the hand-off placeholder. When the server
// refuses, ttl is the key's remaining time to live, or -1 when unknown (or
// not asked for: a first try asks only when wantTTL).
func (m *Mutex) acquire(ctx context.Context, pool redis.Pool, value string, afterWait, wantTTL bool) (ok bool, ttl time.Duration, err error) {
	defer recoverPanic(&err)
	if _, ours := pool.(redis.Subscriber); !ours {
		// A Pool of the user's own (none of this project's adapters)
		// sees only the calls redsync makes: a SET NX per try.
		afterWait, wantTTL = false, false
	}
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, -1, err
	}
	defer conn.Close()
	if !afterWait {
		// The first try is the plain SET NX of redsync: the fast path of
		// an uncontended lock, one command.
		ok, err = conn.SetNX(m.name, value, m.cfg.expiry)
		if ok || err != nil || !wantTTL {
			return ok, -1, err
		}
		ttl, err = conn.PTTL(m.name)
		if err != nil || ttl < 0 {
			return false, -1, nil
		}
		return false, ttl, nil
	}
	reply, err := conn.Eval(scripts.AcquireAfterWait, m.args.name, value, m.args.expiryMillis, handoffMarker)
	if err != nil {
		return false, -1, err
	}
	got, err := scripts.ParseAcquireAfterWait(reply)
	if err != nil {
		return false, -1, err
	}
	return got.Acquired, got.TTL, nil
}
