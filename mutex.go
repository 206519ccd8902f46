package redsync

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// A Mutex is a distributed mutual exclusion lock on one name, held when a
// quorum of the servers given to New store the Mutex's value under the name.
//
// Name, Value, Token and Until may be called from any goroutine at any
// time, also while another goroutine locks, extends or unlocks. Lock,
// Unlock, Extend and Valid are safe to call concurrently (no data race),
// but a Mutex stands for one holder: use one Mutex per goroutine that
// wants the lock.
type Mutex struct {
	name   string
	expiry time.Duration

	tries     int
	delayFunc DelayFunc

	driftFactor   float64
	timeoutFactor float64

	quorum int

	genValueFunc  func() (string, error)
	shuffle       bool
	failFast      bool
	setNXOnExtend bool

	handoff bool   // waiters listen for releases (WithHandoff)
	channel string // the pub/sub channel announcing releases of name

	fencing bool // acquisitions agree on a fencing token (WithFencing)

	rs     *Redsync
	pools  []redis.Pool
	states []*nodeState // per pool, in the order of pools
	// order[i] is the index, among the pools given to New, of pools[i];
	// nil when they are in that order (see WithShufflePools).
	order    []int
	inflight *inflightCount

	// invalid is the first bad argument or option found by NewMutex,
	// returned by every operation.
	invalid error

	mu         sync.Mutex // guards value, token, until, acquiredAt, hold, released and keeper
	value      string
	valueGiven bool   // WithValue was given (checked by checkConfig)
	token      uint64 // the fencing token of value; 0 without one
	until      time.Time
	acquiredAt time.Time // the start of the attempt that acquired value; zero with WithValue
	hold       *holding  // the servers that may hold value; nil after Unlock
	// released: Unlock was called on value. Nothing may set the key
	// with value again (no KeepAlive, no Extend that sets a missing key).
	released bool
	keeper   *keeper // the background extension, while KeepAlive runs

	// obs observes the Mutex's operations; nil when nobody does.
	obs Observer

	keepAliveInterval time.Duration // WithKeepAliveInterval; 0: a third of the expiry

	// args are script arguments that do not change, converted to
	// interfaces once rather than on every request.
	args struct {
		name, channel, fenceKey, expiryMillis, graceMillis any
	}
}

// Name returns the mutex's name, the key that holds the lock.
func (m *Mutex) Name() string {
	return m.name
}

// Value returns the value that marks the lock as this Mutex's: "" until a
// lock is acquired (or a value is given with WithValue).
func (m *Mutex) Value() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.value
}

// Until returns the time until which the lock is held for sure: the expiry
// minus the time acquiring (or extending) took and minus the clock drift.
// It is the zero time until a lock is acquired.
func (m *Mutex) Until() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.until
}

// TryLock tries once to acquire the lock and returns at once, acquired or
// not.
func (m *Mutex) TryLock() error {
	return m.TryLockContext(context.Background())
}

// TryLockContext tries once to acquire the lock and returns at once,
// acquired or not; it returns earlier when ctx ends.
func (m *Mutex) TryLockContext(ctx context.Context) error {
	return m.lockContext(ctx, 1)
}

// Lock acquires the lock, trying up to the number of tries set with
// WithTries and waiting at most the retry delay (WithRetryDelay) between
// tries. While it waits it is woken, and tries again without spending a
// try, when the lock is released or its key must have expired (see
// WithHandoff). On failure it returns the last try's error (an *ErrTaken
// when a quorum of servers held the key for somebody else) or ErrFailed,
// and leaves nothing on any server; Lock may be called again.
func (m *Mutex) Lock() error {
	return m.LockContext(context.Background())
}

// LockContext is Lock that gives up when ctx ends: it then returns an error
// that matches both ErrFailed and ctx.Err() with errors.Is, within a few
// milliseconds of the cancellation. Whatever a try had acquired is
// released on a context of its own, so a cancelled caller leaves nothing
// behind. A nil ctx is rejected with an *ArgumentError.
func (m *Mutex) LockContext(ctx context.Context) error {
	return m.lockContext(ctx, m.tries)
}

func (m *Mutex) lockContext(ctx context.Context, tries int) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if m.obs == nil {
		_, err := m.acquireLoop(ctx, tries)
		return err
	}
	start := time.Now()
	ctx = m.observeStart(ctx, OpLock, tries)
	count, err := m.acquireLoop(ctx, tries)
	e := DoneEvent{Op: OpLock, Name: m.name, Err: err, Canceled: canceledBy(ctx, err), Tries: count.tries, Attempts: count.attempts}
	now := time.Now()
	e.Duration = now.Sub(start)
	if err == nil {
		e.Validity = m.Until().Sub(now)
		e.Token = m.Token()
	}
	m.obs.Done(ctx, e)
	return err
}

// lockCount counts the tries (as WithTries counts them: the retry delays
// waited, plus one) and the attempts of a Lock call.
type lockCount struct {
	tries, attempts int
}

// acquireLoop is the Redlock acquire loop of lockContext: it attempts to
// acquire the lock until an attempt does, the tries run out or ctx ends.
func (m *Mutex) acquireLoop(ctx context.Context, tries int) (count lockCount, err error) {
	var (
		lastErr error
		w       *waiter // this call's place in the queue for the name, once it waits
		timer   *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if w != nil {
			var until time.Time
			if err == nil {
				until = m.Until()
			}
			w.leave(err == nil, until)
		}
	}()
	// count.tries counts the retry delays waited so far, plus one;
	// attempts made on a wake-up within a delay do not count.
	count.tries = 1
	var a lockAttempt
	if tries > 1 && m.handoff && m.rs.canListen {
		// Behind waiters of this process, a first try would find the
		// lock held or reserved for them: queue at once.
		w = m.rs.handoff.joinBehind(m)
	}
	if w != nil {
		a = lockAttempt{freeIn: -1}
	} else {
		// A refused first try asks for the key's time to live only if
		// Lock may wait for it.
		a, err = m.attempt(ctx, false, m.handoff && tries > 1, nil, count, "")
	}
	var (
		periodEnd time.Time
		// errorRetries counts the early attempts made in a row because a
		// server failed (see below).
		errorRetries uint
		// next is the value of the next attempt, made while waiting so
		// that a releaser can hand the lock over to it; "" until then.
		next string
	)
	for {
		if !a.start.IsZero() {
			count.attempts++
		}
		if err != nil {
			return count, err
		}
		if a.held {
			return count, nil
		}
		if a.res.ctxErr != nil {
			awaitReleased(a.released, cancelCleanupWait)
			return count, lockAborted(a.res.ctxErr, a.res.err)
		}
		if a.res.err != nil {
			lastErr = a.res.err
		}
		if count.tries >= tries {
			if count.attempts == 0 {
				// Queued behind other waiters from the start, it never
				// tried: one plain try before giving up, so that the
				// error says why (an *ErrTaken, as redsync would).
				a, err = m.attempt(ctx, false, false, w, count, next)
				next = ""
				continue
			}
			awaitReleased(a.released, m.opTimeout())
			if lastErr != nil {
				return count, lastErr
			}
			return count, ErrFailed
		}
		if w == nil && m.handoff && m.rs.canListen {
			w = m.rs.handoff.join(m, a.start)
		}
		if periodEnd.IsZero() {
			delay := m.delayFunc(count.tries)
			if delay < 0 {
				delay = 0
			}
			periodEnd = time.Now().Add(delay)
		}
		// The waiter at the head of the queue (or any waiter when nobody
		// announces releases) also wakes when the key must have expired
		// on a quorum of servers.
		head := w == nil || w.head()
		wakeAt := periodEnd
		if a.freeIn >= 0 && head {
			free := a.start.Add(a.freeIn + time.Duration(mathrand.Int63n(int64(time.Millisecond))))
			if free.Before(wakeAt) {
				wakeAt = free
			}
		}
		// A server that failed the attempt (a connection broken by a
		// restart, say) may not announce the next release either: try
		// again soon rather than only at the end of the delay, backing off
		// while servers keep failing.
		var failed *RedisError
		if w != nil && errors.As(a.res.err, &failed) {
			if errorRetries > 5 {
				errorRetries = 5
			}
			if soon := time.Now().Add(errorRetryPause << errorRetries); soon.Before(wakeAt) {
				wakeAt = soon
			}
			errorRetries++
		} else {
			errorRetries = 0
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(wakeAt))
		} else {
			timer.Reset(time.Until(wakeAt))
		}
		var wake chan struct{}
		if w != nil {
			wake = w.wake
			// While it waits, a releaser of this process may hand the
			// lock over to it, with the value of its next attempt.
			if next == "" && !m.fencing && !m.shuffle {
				next, _ = m.genValueFunc() // a failure shows in the attempt
			}
			w.idle(next)
		}
		select {
		case <-ctx.Done():
			return count, lockAborted(ctx.Err(), lastErr)
		case <-wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
			if wakeAt.Before(periodEnd) {
				break // the key expired: an attempt that does not count
			}
			count.tries++
			periodEnd = time.Time{}
			if !head {
				// Queued behind other waiters of this process, which
				// get the lock first: the delay counts, the attempt is
				// theirs to make.
				continue
			}
		}
		a, err = m.attempt(ctx, m.handoff, m.handoff, w, count, next)
		next = ""
	}
}

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
		if value, err = m.genValueFunc(); err != nil {
			return lockAttempt{}, fmt.Errorf("redsync: making the lock value: %w", err)
		}
	}
	hold := newHolding(value, len(m.pools))
	start := time.Now()
	// freeAfter[node] is 1 + the milliseconds until the node is free of the
	// key (1 when this attempt set it there), or 0 when unknown; written by
	// the node goroutines, possibly after round returned.
	var freeAfter []int64
	if len(m.pools) <= len(hold.freeAfter) {
		freeAfter = hold.freeAfter[:len(m.pools)]
	} else {
		freeAfter = make([]int64, len(m.pools))
	}
	// reads gathers the fencing counters and clocks of the servers that
	// granted the acquire, with fencing.
	var reads *fenceReads
	if m.fencing {
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
	until := start.Add(m.expiry - m.drift())
	granted := res.n >= m.quorum && res.ctxErr == nil && time.Now().Before(until)
	var (
		token          uint64
		notWrittenBack bool
	)
	if granted && reads != nil {
		// The token counts only once a quorum stores it (see WithFencing).
		var stored bool
		token, stored = reads.token()
		wb := roundResult{n: m.quorum}
		if !stored {
			wb = m.writeBackToken(ctx, value, token, hold)
		}
		switch {
		case wb.ctxErr != nil:
			a.res.ctxErr = wb.ctxErr
			granted, notWrittenBack = false, true
		case wb.n < m.quorum:
			a.res.err = errors.Join(ErrTokenNotStored, wb.err)
			granted, notWrittenBack = false, true
		default:
			granted = time.Now().Before(until)
		}
	}
	for _, node := range hold.refused.decide(granted && reads == nil) {
		m.reassert(node, m.pools[node], value, hold, start)
	}
	if granted {
		m.mu.Lock()
		m.value, m.token, m.until, m.acquiredAt, m.hold, m.released = value, token, until, start, hold, false
		m.mu.Unlock()
		a.held = true
	} else {
		a.released = m.releaseHold(hold)
		if !notWrittenBack {
			// (After a failed write-back, the retry waits as usual
			// rather than at once.)
			a.freeIn = quorumFreeIn(freeAfter, m.quorum)
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
		m.value, m.token, m.until, m.acquiredAt, m.hold, m.released = o.value, 0, until, o.start, o.hold, false
		m.mu.Unlock()
		a.held = true
	} else {
		// Every server's reply first (the releaser's round returned at
		// its own quorum), so that the release covers every server that
		// handed over, and the next try finds them free.
		wait, cancel := context.WithTimeout(context.Background(), m.opTimeout())
		for node := range m.pools {
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
		Quorum:     m.quorum,
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

// lockAborted is Lock's error when the caller's context ended.
func lockAborted(ctxErr, lastErr error) error {
	return errors.Join(ErrFailed, ctxErr, lastErr)
}

// Unlock releases the lock and reports whether a quorum of servers
// released it. A server on which the key had already expired is reported
// as ErrLockAlreadyExpired, one holding another value as *ErrNodeTaken.
// Unlock without a value (no Lock, no WithValue) returns ErrNotHeld.
func (m *Mutex) Unlock() (bool, error) {
	return m.UnlockContext(context.Background())
}

// UnlockContext is Unlock that stops waiting when ctx ends. With a ctx
// that is done already it sends nothing, returns false with an error
// matching ctx.Err() and leaves the Mutex as it was: the lock is still
// held, and a later Unlock releases it. When ctx ends during the call, the
// releases already sent still complete in the background, bounded by the
// per-server deadline, so the key does not outlive a cancelled Unlock: the
// error (matching ctx.Err()) then says that the lock is being released,
// and the Mutex counts as unlocked.
func (m *Mutex) UnlockContext(ctx context.Context) (bool, error) {
	if err := m.checkActive(ctx, "release"); err != nil {
		return false, err
	}
	if m.obs == nil {
		return m.unlock(ctx)
	}
	start := time.Now()
	held := m.heldFor(start)
	ctx = m.observeStart(ctx, OpUnlock, 0)
	ok, err := m.unlock(ctx)
	m.obs.Done(ctx, DoneEvent{Op: OpUnlock, Name: m.name, Duration: time.Since(start), Err: err, Canceled: canceledBy(ctx, err), Held: held})
	return ok, err
}

// unlock is UnlockContext once its arguments are checked.
func (m *Mutex) unlock(ctx context.Context) (bool, error) {
	// Nothing extends the key from now on.
	m.stopKeepAlive(ErrUnlocked)
	m.mu.Lock()
	value, hold := m.value, m.hold
	m.hold = nil
	m.released = value != ""
	m.mu.Unlock()
	if value == "" {
		return false, ErrNotHeld
	}
	var (
		offer      *handOffer
		staleNodes uint64
	)
	if m.rs.canListen {
		offer = m.rs.handoff.offerHead(m)
		staleNodes = m.rs.handoff.staleListeners(m)
	}
	var valueArg any = value
	res := m.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		if hold != nil {
			// An acquire of the value still on its way to this server
			// (Lock returned at quorum) is waited for, so that this
			// release comes after it and covers it. From then on,
			// requests that set the value here (a late acquire, an
			// extension that sets a missing key) release it themselves.
			hold.awaitReply(ctx, node)
			if !hold.giveUpNode(node) {
				hold.giveUp()
			}
		}
		stale := countEveryListener
		if staleNodes&(1<<uint(node)) != 0 {
			stale = leaveOneListener
		}
		ok, handed, err := m.releaseTo(ctx, pool, valueArg, stale, offer)
		if offer != nil {
			offer.replied(m, node, handed, err)
		}
		if err != nil && err != ErrLockAlreadyExpired && !neverSent(err) {
			// A connection broken before the request went out (by a
			// server restart, say) fails it: release once more, on the
			// side. Releasing twice is harmless.
			m.inflight.add()
			go func() {
				defer m.inflight.done()
				m.releaseLate(pool, value)
			}()
		}
		return ok, err
	}, m.watchRound(ctx, OpUnlock, 0), func(node int) bool {
		// A server that cannot hold the value needs no release.
		if hold == nil || hold.mayHold(node) {
			return false
		}
		hold.giveUpNode(node)
		if offer != nil {
			offer.hold.acquireReplied(node)
		}
		return true
	})
	handedOver := false
	if offer != nil {
		handedOver = offer.settle()
	}
	if res.ctxErr != nil {
		return false, errors.Join(res.err, fmt.Errorf("redsync: the context ended before a quorum confirmed the release; the releases sent complete in the background: %w", res.ctxErr))
	}
	if res.n < m.quorum {
		return false, res.err
	}
	if m.rs.canListen && !handedOver {
		m.rs.handoff.releasedHere(m.name)
	}
	return true, nil
}

// Extend resets the key's expiry on every server to the full expiry and
// reports whether a quorum did; Until moves accordingly. It returns
// ErrExtendFailed when a quorum extended but too late to leave any
// validity, and ErrNotHeld without a value. After Unlock it never sets the
// key again, even with WithSetNXOnExtend: it only extends a key that
// still holds the value (none does, once the release went through).
func (m *Mutex) Extend() (bool, error) {
	return m.ExtendContext(context.Background())
}

// ExtendContext is Extend that stops waiting when ctx ends. With a ctx
// that is done already it sends nothing and returns false with an error
// matching ctx.Err().
func (m *Mutex) ExtendContext(ctx context.Context) (bool, error) {
	if err := m.checkActive(ctx, "extension"); err != nil {
		return false, err
	}
	_, err := m.extend(ctx, OpExtend, m.setNXOnExtend)
	return err == nil, err
}

// extend runs one extend round on the Mutex's value; setNX also sets the
// key where it is missing. It moves Until on success. op is OpExtend or
// OpKeepAlive, for the Observer.
func (m *Mutex) extend(ctx context.Context, op Op, setNX bool) (roundResult, error) {
	if m.obs == nil {
		return m.extendOnce(ctx, op, setNX)
	}
	start := time.Now()
	ctx = m.observeStart(ctx, op, 0)
	res, err := m.extendOnce(ctx, op, setNX)
	now := time.Now()
	e := DoneEvent{Op: op, Name: m.name, Duration: now.Sub(start), Err: err, Canceled: canceledBy(ctx, err)}
	if err == nil {
		e.Validity = m.Until().Sub(now)
	}
	m.obs.Done(ctx, e)
	return res, err
}

// extendOnce is extend, unobserved.
func (m *Mutex) extendOnce(ctx context.Context, op Op, setNX bool) (roundResult, error) {
	m.mu.Lock()
	value, hold, validUntil, released := m.value, m.hold, m.until, m.released
	m.mu.Unlock()
	if value == "" {
		return roundResult{}, ErrNotHeld
	}
	script := scripts.Extend
	if setNX && !released {
		// (After Unlock, an extension that set a missing key would bring
		// back a lock its holder gave up.)
		script = scripts.ExtendOrSet
	}
	var valueArg any = value
	start := time.Now()
	res := m.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, script, m.args.name, valueArg, m.args.expiryMillis)
		// Only the script's own replies count: a server that did not run
		// it has not extended anything.
		status, unexpected := scripts.ParseExtend(reply)
		// A key set again (it was missing) on a server after Unlock gave
		// the hold up is released again. An extension of a key that still
		// existed needs nothing: Unlock's release deletes it, before or
		// after, and a plain extend cannot bring a released key back.
		if unexpected == nil && status == scripts.ExtendSet && hold != nil && !hold.record(node) {
			m.releaseLate(pool, value)
		}
		if err != nil {
			return false, err
		}
		if unexpected != nil {
			return false, unexpected
		}
		return status != scripts.ExtendRefused, nil
	}, m.watchRound(ctx, op, 0), skipAlways)
	if res.ctxErr != nil {
		return res, errors.Join(res.err, res.ctxErr)
	}
	if res.n < m.quorum {
		return res, res.err
	}
	now := time.Now()
	if op == OpKeepAlive && !now.Before(validUntil) {
		// The replies came after the lock's validity ended (the process
		// was stopped, say): another holder may have had the lock in
		// between, and keys set again where they had expired would hide
		// it. KeepAlive extends only a lock that never lapsed.
		return res, fmt.Errorf("%w: the extension came back after the lock's validity ended", ErrLockLost)
	}
	until := start.Add(m.expiry - m.drift())
	if !now.Before(until) {
		return res, ErrExtendFailed
	}
	m.mu.Lock()
	if m.value == value {
		m.until = until
	}
	m.mu.Unlock()
	return res, nil
}

// Valid reports whether a quorum of servers holds the Mutex's value. It
// may report true for a lock that expires while the reply travels. On a
// Mutex without a value it returns false with an *ErrTaken of every
// server, as redsync does, without contacting any.
//
// Deprecated: Use Until, which needs no round trip.
func (m *Mutex) Valid() (bool, error) {
	return m.ValidContext(context.Background())
}

// ValidContext is Valid that stops waiting when ctx ends. With a ctx that
// is done already it sends nothing and returns false with an error
// matching ctx.Err().
//
// Deprecated: Use Until, which needs no round trip.
func (m *Mutex) ValidContext(ctx context.Context) (bool, error) {
	if err := m.checkActive(ctx, "check"); err != nil {
		return false, err
	}
	value := m.Value()
	if value == "" {
		// As redsync: every server counts as holding another value,
		// without being asked.
		nodes := make([]int, len(m.pools))
		for i := range nodes {
			nodes[i] = i
		}
		return false, &ErrTaken{Nodes: nodes}
	}
	res := m.round(ctx, func(ctx context.Context, _ int, pool redis.Pool) (bool, error) {
		conn, err := pool.Get(ctx)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		current, err := conn.Get(m.name)
		return err == nil && current == value, err
	}, nil, skipAlways)
	if res.ctxErr != nil {
		return false, errors.Join(res.err, res.ctxErr)
	}
	return res.n >= m.quorum, res.err
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
		ok, err = conn.SetNX(m.name, value, m.expiry)
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

// release deletes the key on one server if it holds value, once more on
// another connection when the first was found closed by the server. It
// never leaves the placeholder for waiters: it cleans up after a failed
// attempt, or after a late reply, for nobody waiting.
func (m *Mutex) release(ctx context.Context, pool redis.Pool, value any) (bool, error) {
	ok, _, err := m.releaseTo(ctx, pool, value, neverReserve, nil)
	return ok, err
}

// Arguments of scripts.Release (ARGV[5]): how many listeners of the releaser's own
// process to leave out when it counts the waiters that heard the release
// (see handoff.staleListeners), or never to reserve the key for waiters.
var (
	countEveryListener any = int64(0)
	leaveOneListener   any = int64(1)
	neverReserve       any = int64(-1)
)

// releaseTo is release that, with an offer, hands the key over to the
// offer's waiter there when nobody else listens for it (see
// scripts.HandOver); handed reports that it did. Without one, stale is
// scripts.Release's count of listeners to leave out.
func (m *Mutex) releaseTo(ctx context.Context, pool redis.Pool, value, stale any, offer *handOffer) (ok, handed bool, err error) {
	ok, handed, err = m.releaseOnce(ctx, pool, value, stale, offer)
	if brokenConnection(err) {
		// A pooled connection the server closed (it restarted, say):
		// the request never reached it, and another connection will.
		// Releasing twice is harmless anyway, and the hand-over script
		// reports a hand-over made by the first request as one.
		ok, handed, err = m.releaseOnce(ctx, pool, value, stale, offer)
	}
	return ok, handed, err
}

// releaseOnce is one release (or hand-over) request.
func (m *Mutex) releaseOnce(ctx context.Context, pool redis.Pool, value, stale any, offer *handOffer) (ok, handed bool, err error) {
	defer recoverPanic(&err)
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, false, err
	}
	defer conn.Close()
	var reply any
	if offer == nil {
		reply, err = conn.Eval(scripts.Release, m.args.name, value, m.args.channel, handoffMarker, m.args.graceMillis, stale)
	} else {
		reply, err = conn.Eval(scripts.HandOver, m.args.name, value, m.args.channel, handoffMarker, m.args.graceMillis, offer.valueArg, offer.expiryArg)
	}
	if err != nil {
		return false, false, err
	}
	// Only the script's own replies count: a server that did not run it
	// has not released anything.
	var status scripts.ReleaseReply
	if offer == nil {
		status, err = scripts.ParseRelease(reply)
	} else {
		status, err = scripts.ParseHandOver(reply)
	}
	if err != nil {
		return false, false, err
	}
	switch status {
	case scripts.HandOverHanded:
		return true, true, nil
	case scripts.ReleaseReleased:
		return true, false, nil
	case scripts.ReleaseOtherValue:
		return false, false, nil
	}
	return false, false, ErrLockAlreadyExpired // scripts.ReleaseMissing
}

// handoffGrace is how long a released key stays reserved for the waiters
// that were told about it.
func (m *Mutex) handoffGrace() time.Duration {
	grace := m.opTimeout()
	if grace > maxHandoffGrace {
		grace = maxHandoffGrace
	}
	if grace < time.Millisecond {
		grace = time.Millisecond
	}
	return grace
}

// eval runs script on one server and returns its reply.
func (m *Mutex) eval(ctx context.Context, pool redis.Pool, script *redis.Script, keysAndArgs ...any) (reply any, err error) {
	defer recoverPanic(&err)
	conn, err := pool.Get(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Eval(script, keysAndArgs...)
}

// releaseHold gives up hold and releases, in the background, the servers
// that may hold its value.
//
// The returned channel is closed once every release is done (nil when
// there was nothing to release).
func (m *Mutex) releaseHold(hold *holding) <-chan struct{} {
	nodes := hold.giveUp()
	if len(nodes) == 0 {
		return nil
	}
	released := make(chan struct{})
	remaining := int32(len(nodes))
	for _, node := range nodes {
		m.inflight.add()
		go func(pool redis.Pool) {
			defer m.inflight.done()
			m.releaseLate(pool, hold.value)
			if atomic.AddInt32(&remaining, -1) == 0 {
				close(released)
			}
		}(m.pools[node])
	}
	return released
}

// awaitReleased waits up to d for the releases of a failed attempt, so
// that a Lock that gives up leaves the servers that answer clean when it
// returns; a stalled server is not waited for beyond d.
func awaitReleased(released <-chan struct{}, d time.Duration) {
	if released == nil {
		return
	}
	t := getTimer(d)
	defer putTimer(t)
	select {
	case <-released:
	case <-t.C:
	}
}

// cancelCleanupWait bounds how long a cancelled Lock waits for its
// releases: it returns within a few milliseconds of the cancellation. The
// releases of the servers that answer take about a round trip.
const cancelCleanupWait = 5 * time.Millisecond

// releaseLate releases value on one server on behalf of nobody waiting,
// bounded by the expiry, after which the key is gone anyway.
func (m *Mutex) releaseLate(pool redis.Pool, value string) {
	_, _ = m.release(m.rs.boundedContext(context.Background(), m.expiry), pool, value)
}

// errorRetryPause is how soon a waiter tries again after a server failed
// its attempt; it doubles while servers keep failing, up to 32 times.
const errorRetryPause = 200 * time.Millisecond

// brokenConnection reports whether err says the connection was found
// closed or reset by the server.
func brokenConnection(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed))
}

// neverSent reports whether err says the request could not even reach the
// server (the connection was refused), so it cannot have run there.
func neverSent(err error) bool {
	if err == ErrBacklogged {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// serverIndex returns the index, among the pools given to New, of the
// server that m numbers node.
func (m *Mutex) serverIndex(node int) int {
	if m.order == nil {
		return node
	}
	return m.order[node]
}

// opTimeout is the per-server deadline of every operation.
func (m *Mutex) opTimeout() time.Duration {
	return perServerDeadline(m.expiry, m.timeoutFactor)
}

// drift is the part of the expiry set aside for clock drift.
func (m *Mutex) drift() time.Duration {
	return time.Duration(float64(m.expiry) * m.driftFactor)
}

// check returns the error every operation reports before contacting a
// server: a bad configuration or a nil context.
func (m *Mutex) check(ctx context.Context) error {
	if m.invalid != nil {
		return m.invalid
	}
	if ctx == nil {
		return &ArgumentError{Arg: "ctx", Problem: "nil context; pass context.Background() or a context of your own"}
	}
	return nil
}

// checkActive is check for an operation on a held lock, which also sends
// nothing when ctx is done already; what names the operation in the error.
func (m *Mutex) checkActive(ctx context.Context, what string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redsync: %s not sent, the context is done: %w", what, err)
	}
	return nil
}

// genValue makes the default lock value: 16 random bytes, base64.
func genValue() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}
