package redsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/quorum"
	"github.com/quorumlock/redsync/internal/scriptkeys"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// The engine shared by MultiMutex and Semaphore: one value held under a
// set of keys, acquired, extended and released on every server by one
// script per server (per hash slot on a Redis Cluster), through the
// Mutex's rounds. A template Mutex, made with the caller's options, gives
// the servers, the configuration and the rounds.

// keySetOptions checks the options that a MultiMutex or a Semaphore does
// not support; what names the primitive in the error.
func keySetOptions(m *Mutex, what string) error {
	if m.invalid != nil {
		return m.invalid
	}
	switch {
	case m.cfg.valueGiven:
		return &ArgumentError{Arg: "WithValue", Problem: what + " makes a value of its own for every acquisition"}
	case m.cfg.setNXOnExtend:
		return &ArgumentError{Arg: "WithSetNXOnExtend", Problem: what + " extends only keys that still hold its value"}
	}
	return nil
}

// keyHold tracks the servers on which an attempt's value may be set, so
// that each is released once the attempt fails or the holder releases,
// even when its acquire reply arrives after the attempt returned (the
// reply's own goroutine then releases it).
type keyHold struct {
	mu sync.Mutex // guards the fields below
	// givenUp: the servers recorded were handed to a release; a reply
	// from now on releases what it set itself.
	givenUp bool
	// recorded are the servers whose acquire set keys or failed with an
	// error (which may have set them); set[node] the keys that were set
	// (indexes into the key set), nil for an error.
	recorded quorum.Set
	set      map[int][]int
}

// record notes that node set keys (nil: may have set any) and reports
// whether the caller may leave them: false when the hold was given up.
func (h *keyHold) record(node int, keys []int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.givenUp {
		return false
	}
	h.recorded.Add(node)
	if h.set == nil {
		h.set = make(map[int][]int)
	}
	h.set[node] = keys
	return true
}

// giveUp marks the hold given up and returns the servers recorded.
func (h *keyHold) giveUp() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.givenUp = true
	return h.recorded.AppendTo(nil)
}

// pendingReplies are the servers whose acquire reply is not in yet: a
// release sent to one of them waits for it, so that the release comes
// after the acquire on that server and covers it.
type pendingReplies struct {
	mu      sync.Mutex // guards pending and replied
	pending quorum.Set
	replied chan struct{} // closed at the next reply, once made
}

// newPendingReplies returns the replies of an acquire sent to n servers.
func newPendingReplies(n int) *pendingReplies {
	p := &pendingReplies{}
	p.pending.Fill(n)
	return p
}

// done notes that node's reply is in (and recorded).
func (p *pendingReplies) done(node int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending.Remove(node)
	if p.replied != nil {
		close(p.replied)
		p.replied = nil
	}
}

// await waits until node's reply is in, or ctx ends.
func (p *pendingReplies) await(ctx context.Context, node int) {
	if p == nil {
		return
	}
	for {
		p.mu.Lock()
		if !p.pending.Has(node) {
			p.mu.Unlock()
			return
		}
		if p.replied == nil {
			p.replied = make(chan struct{})
		}
		replied := p.replied
		p.mu.Unlock()
		select {
		case <-replied:
		case <-ctx.Done():
			return
		}
	}
}

// keyServers are the servers a MultiMutex or a Semaphore locks on, with
// its configuration: those of the template Mutex t.
type keyServers struct {
	t *Mutex
	// split, when not nil, tells per server that it refused keys of
	// several hash slots (a Redis Cluster, CROSSSLOT): its requests go
	// one per slot from then on.
	split []atomic.Bool
}

// quorum is the number of servers that decide.
func (s keyServers) quorum() int { return s.t.nodes.quorum }

// bounded is the context of a request sent on behalf of nobody waiting,
// bounded by the expiry, after which the keys are gone anyway.
func (s keyServers) bounded() context.Context {
	return s.t.rs.boundedContext(context.Background(), s.t.cfg.expiry)
}

// validUntil is the validity of an acquisition or extension started at
// start: the expiry less the drift allowance, counted from start.
func (s keyServers) validUntil(start time.Time) time.Time {
	return start.Add(s.t.cfg.expiry - s.t.drift())
}

// eval runs script on pool with keys (and args after them), one request
// for all keys; a Redis Cluster that refuses keys of different hash slots
// (CROSSSLOT) gets one request per slot instead, whose replies combine
// folds, in slot order, and stops at its first false; with s.split, only
// its first request refused so costs the round trip.
func (s keyServers) eval(ctx context.Context, node int, pool redis.Pool, script *redis.Script, keys []string, args []any, combine func(keys []int, reply any) (bool, error)) (err error) {
	return s.evalPaired(ctx, node, pool, script, keys, nil, args, combine)
}

// evalPaired is eval with, when counters is not nil, the fencing counter
// counters[i] of each key keys[i] (in its hash slot): a request's KEYS are
// its keys, then their counters, and its ARGV begin with the number of
// keys (the form of the fenced multi-key scripts).
func (s keyServers) evalPaired(ctx context.Context, node int, pool redis.Pool, script *redis.Script, keys, counters []string, args []any, combine func(keys []int, reply any) (bool, error)) (err error) {
	if s.split == nil || !s.split[node].Load() {
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		reply, err := s.evalOnce(ctx, pool, script, keys, counters, all, args)
		if err == nil {
			_, err = combine(all, reply)
			return err
		}
		if !strings.Contains(err.Error(), "CROSSSLOT") {
			return err
		}
		if s.split != nil {
			s.split[node].Store(true)
		}
	}
	for _, group := range scriptkeys.BySlot(keys) {
		reply, err := s.evalOnce(ctx, pool, script, keys, counters, group, args)
		if err != nil {
			return err
		}
		more, err := combine(group, reply)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// evalOnce runs script on pool with the keys of indexes which (and their
// counters, see evalPaired), once more on another connection when the
// first was found closed by the server.
func (s keyServers) evalOnce(ctx context.Context, pool redis.Pool, script *redis.Script, keys, counters []string, which []int, args []any) (any, error) {
	nkeys := len(which)
	if counters != nil {
		nkeys *= 2
	}
	keysAndArgs := make([]any, 0, 2+nkeys+len(args))
	keysAndArgs = append(keysAndArgs, nkeys)
	for _, i := range which {
		keysAndArgs = append(keysAndArgs, keys[i])
	}
	if counters != nil {
		for _, i := range which {
			keysAndArgs = append(keysAndArgs, counters[i])
		}
		keysAndArgs = append(keysAndArgs, len(which))
	}
	keysAndArgs = append(keysAndArgs, args...)
	return evalRetried(ctx, pool, script, keysAndArgs)
}

// evalRetried is evalScript, once more on another connection when the
// first was found closed by the server.
func evalRetried(ctx context.Context, pool redis.Pool, script *redis.Script, keysAndArgs []any) (any, error) {
	reply, err := evalScript(ctx, pool, script, keysAndArgs)
	if brokenConnection(err) {
		reply, err = evalScript(ctx, pool, script, keysAndArgs)
	}
	return reply, err
}

// evalScript is one Eval on a connection of pool.
func evalScript(ctx context.Context, pool redis.Pool, script *redis.Script, keysAndArgs []any) (reply any, err error) {
	defer recoverPanic(&err)
	script, keysAndArgs = counted(script, keysAndArgs)
	conn, err := pool.Get(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Eval(script, keysAndArgs...)
}

// counted returns a script whose KeyCount is negative (its count of keys
// comes first among keysAndArgs) as the script with that count as its
// KeyCount, and the keys and arguments after the count: a user's Pool
// written as redsync's adapters are, which makes KeyCount keys, takes it,
// where a negative KeyCount makes it panic.
func counted(script *redis.Script, keysAndArgs []any) (*redis.Script, []any) {
	if script.KeyCount >= 0 || len(keysAndArgs) == 0 {
		return script, keysAndArgs
	}
	n, ok := keysAndArgs[0].(int)
	if !ok || n < 0 || n > len(keysAndArgs)-1 {
		return script, keysAndArgs
	}
	return redis.NewScript(n, script.Src, script.Hash), keysAndArgs[1:]
}

// release deletes, on pool, the keys that hold value; announce names the
// one channel the release is announced on, "" for each key's own. It
// reports whether every key was released (ErrLockAlreadyExpired when some
// had expired; false, nil when some held another value).
func (s keyServers) release(ctx context.Context, node int, pool redis.Pool, keys []string, value, announce string) (bool, error) {
	var total scripts.MultiReleaseReply
	args := []any{value, releaseChannel(""), announce, shardedChannel(announce), handoff.ShardedPrefix}
	err := s.eval(ctx, node, pool, scripts.MultiRelease, keys, args, func(_ []int, reply any) (bool, error) {
		r, err := scripts.ParseMultiRelease(reply)
		total.Released += r.Released
		total.Missing += r.Missing
		total.Other += r.Other
		return true, err
	})
	switch {
	case err != nil:
		return false, err
	case total.Other > 0:
		return false, nil
	case total.Missing > 0:
		return false, ErrLockAlreadyExpired
	}
	return true, nil
}

// releaseLater releases keys with value on the servers nodes, in the
// background, counted by the Redsync's in-flight count.
func (s keyServers) releaseLater(nodes []int, keys []string, value, announce string) {
	for _, node := range nodes {
		s.t.nodes.inflight.add()
		go func(node int, pool redis.Pool) {
			defer s.t.nodes.inflight.done()
			_, _ = s.release(s.bounded(), node, pool, keys, value, announce)
		}(node, s.t.nodes.pools[node])
	}
}

// releaseRound releases keys with value on every server, at quorum, each
// once the acquire reply of replies (nil: none) for it is in.
// With answered, a server counts as ok once it ran the release, whatever
// it found.
func (s keyServers) releaseRound(ctx context.Context, keys []string, value, announce string, replies *pendingReplies, answered bool, w *roundWatch) roundResult {
	return s.t.roundAtQuorum(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		replies.await(ctx, node)
		ok, err := s.release(ctx, node, pool, keys, value, announce)
		if answered && (err == nil || err == ErrLockAlreadyExpired) {
			return true, nil
		}
		return ok, err
	}, w, nil)
}

// extend resets the expiry of keys on pool if all hold value.
func (s keyServers) extend(ctx context.Context, node int, pool redis.Pool, keys []string, value string) (bool, error) {
	ok := true
	err := s.eval(ctx, node, pool, scripts.MultiExtend, keys, []any{value, s.t.args.expiryMillis}, func(group []int, reply any) (bool, error) {
		n, err := scripts.ParseMultiIndex(reply, len(group), "multi-key extend")
		switch {
		case err != nil:
			ok = false
			return false, err
		case n < 0:
			ok = false
			return false, ErrLockAlreadyExpired
		case n > 0:
			ok = false
		}
		return ok, nil
	})
	return ok && err == nil, err
}

// keyLease is one value held under keys: a MultiMutex's lock or a
// Semaphore's Lease. announce is the name whose channel announces its
// release ("" for each key's own).
type keyLease struct {
	s         keyServers
	name      string // what an Observer's events name
	releaseOp Op     // the Op of its release (OpRelease, OpMultiUnlock)
	keys      []string
	announce  string
	// replies are those of the acquire of value, which a release waits
	// for; set with value, then only read.
	replies *pendingReplies
	// answered: a release succeeds once a quorum ran it, whatever the
	// servers held (a Semaphore's lease: see Lease.Release).
	answered bool

	mu       sync.Mutex // guards the fields below
	value    string
	token    uint64 // the fencing token of value; 0 without fencing
	until    time.Time
	released bool
	keeper   *keeper
}

// tokenOf returns the fencing token of the lease (0 without fencing).
func (l *keyLease) tokenOf() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

// untilTime returns the validity of the lease.
func (l *keyLease) untilTime() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// extendObserved is extendLease observed as op (OpExtend, OpKeepAlive).
func (l *keyLease) extendObserved(ctx context.Context, op Op) (ok bool, res roundResult, err error) {
	err = l.s.observed(ctx, op, l.name, 0, func(ctx context.Context) (time.Time, uint64, error) {
		var err error
		if ok, res, err = l.extendLease(ctx, op); ok {
			return l.untilTime(), 0, nil
		}
		if err == nil {
			err = res.err
		}
		return time.Time{}, 0, err
	})
	if ok {
		err = nil
	}
	return ok, res, err
}

// extendLease extends the lease on a quorum of servers and reports whether
// it is held, until a later Until; ErrNotHeld when it was released.
func (l *keyLease) extendLease(ctx context.Context, op Op) (bool, roundResult, error) {
	l.mu.Lock()
	value, released := l.value, l.released
	l.mu.Unlock()
	if value == "" || released {
		return false, roundResult{}, ErrNotHeld
	}
	start := time.Now()
	res := l.s.t.roundAtQuorum(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		return l.s.extend(ctx, node, pool, l.keys, value)
	}, l.s.watch(ctx, op, l.name, 0), nil)
	if res.ctxErr != nil {
		return false, res, errors.Join(res.err, res.ctxErr)
	}
	if res.n < l.s.quorum() {
		return false, res, res.err
	}
	until := l.s.validUntil(start)
	if !time.Now().Before(until) {
		return false, res, ErrExtendFailed
	}
	l.mu.Lock()
	if !l.released {
		l.until = until
	}
	l.mu.Unlock()
	return true, res, nil
}

// releaseLease stops the keep-alive and releases the lease on every
// server; it reports whether a quorum released it. A lease is released
// once: later calls return ErrNotHeld.
func (l *keyLease) releaseLease(ctx context.Context, releaseKeys []string) (bool, error) {
	l.stopKeepAlive(ErrUnlocked)
	l.mu.Lock()
	value, released := l.value, l.released
	l.released = true
	l.mu.Unlock()
	if value == "" || released {
		return false, ErrNotHeld
	}
	l.mu.Lock()
	replies := l.replies
	l.mu.Unlock()
	res := l.s.releaseRound(ctx, releaseKeys, value, l.announce, replies, l.answered, l.s.watch(ctx, l.releaseOp, l.name, 0))
	if res.ctxErr != nil {
		return false, errors.Join(res.err, fmt.Errorf("redsync: the context ended before a quorum confirmed the release; the releases sent complete in the background: %w", res.ctxErr))
	}
	if res.n < l.s.quorum() {
		return false, res.err
	}
	if l.s.t.rs.canListen {
		if l.announce != "" {
			l.s.t.rs.handoff.releasedHere(l.announce)
		} else {
			for _, k := range l.keys {
				l.s.t.rs.handoff.releasedHere(k)
			}
		}
	}
	return true, nil
}

// keepAlive is KeepAlive of a MultiMutex or a Lease (see Mutex.KeepAlive
// for the contract).
func (l *keyLease) keepAlive(ctx context.Context) (context.Context, error) {
	if ctx == nil {
		return nil, &ArgumentError{Arg: "ctx", Problem: "nil context; pass context.Background() or a context of your own"}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.value == "" || l.released {
		return nil, ErrNotHeld
	}
	if l.keeper != nil {
		return l.keeper.ctx, nil
	}
	if !time.Now().Before(l.until.Add(-l.s.t.keepAliveMargin())) {
		return nil, fmt.Errorf("%w: its validity is already over", ErrLockLost)
	}
	held, cancel := context.WithCancelCause(ctx)
	k := &keeper{ctx: held, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	l.keeper = k
	go k.keepExtending(l.keptLock(k))
	return held, nil
}

// stopKeepAlive stops the background extension, if any, with cause, and
// waits until it has stopped.
func (l *keyLease) stopKeepAlive(cause error) { stopKeeper(&l.mu, &l.keeper, cause) }

// keptLock is the lease, kept alive by k.
func (l *keyLease) keptLock(k *keeper) keptLock {
	every := l.s.t.keepAliveEvery()
	return keptLock{
		every: every, retry: min(l.s.t.opTimeout(), every), margin: l.s.t.keepAliveMargin(),
		until:   l.untilTime,
		extend:  func(ctx context.Context) (bool, roundResult, error) { return l.extendObserved(ctx, OpKeepAlive) },
		lose:    func(cause error) { k.cancel(cause) },
		notHeld: "released",
	}
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// runHeld is RunLocked of a MultiMutex or RunAcquired of a Semaphore, once
// acquired: it keeps the lease alive while fn runs, and releases it.
func runHeld(ctx context.Context, l *keyLease, release func(context.Context) (bool, error), fn func(ctx context.Context) error) (err error) {
	held, err := l.keepAlive(ctx)
	if err != nil {
		_, _ = release(context.WithoutCancel(ctx))
		return err
	}
	defer func() {
		var lost error
		if cause := context.Cause(held); errors.Is(cause, ErrLockLost) {
			lost = cause
		}
		_, releaseErr := release(context.WithoutCancel(ctx))
		if lost != nil {
			releaseErr = nil
		}
		err = errors.Join(err, lost, releaseErr)
	}()
	return fn(held)
}

// waitRetry waits delay, or until wake (which may be nil) is signalled or
// ctx ends; it returns ctx.Err() when ctx ended.
func waitRetry(ctx context.Context, delay time.Duration, wake <-chan struct{}) error {
	t := getTimer(delay)
	defer putTimer(t)
	select {
	case <-t.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failedAfter is the error of an acquisition that gave up: ErrFailed with
// the last attempt's error, and ctx's when it ended.
func failedAfter(last error, ctxErr error) error {
	if ctxErr != nil {
		return errors.Join(ErrFailed, last, ctxErr)
	}
	if last == nil {
		return ErrFailed
	}
	return errors.Join(ErrFailed, last)
}

// checkCtx reports a nil ctx.
func checkCtx(ctx context.Context) error {
	if ctx == nil {
		return &ArgumentError{Arg: "ctx", Problem: "nil context; pass context.Background() or a context of your own"}
	}
	return nil
}

// watch returns what reports the replies of a round of op on name (the
// attempt-th of an acquisition, 0 for other operations) to the Observer of
// the template Mutex, or nil when nobody observes it.
func (s keyServers) watch(ctx context.Context, op Op, name string, attempt int) *roundWatch {
	if s.t.obs == nil {
		return nil
	}
	return &roundWatch{obs: s.t.obs, ctx: ctx, op: op, name: name, attempt: attempt}
}

// observed runs fn as the operation op on name for the Observer of the
// template Mutex, if any: Start before, Done after, with the validity
// until returns (zero: none) and the fencing token (0: none). The rounds
// report their replies themselves (watch).
func (s keyServers) observed(ctx context.Context, op Op, name string, tries int, fn func(ctx context.Context) (until time.Time, token uint64, err error)) error {
	obs := s.t.obs
	if obs == nil {
		_, _, err := fn(ctx)
		return err
	}
	start := time.Now()
	if derived := obs.Start(ctx, StartEvent{Op: op, Name: name, Tries: tries}); derived != nil {
		ctx = derived
	}
	until, token, err := fn(ctx)
	e := DoneEvent{Op: op, Name: name, Duration: time.Since(start), Err: err, Canceled: canceledBy(ctx, err), Token: token}
	if err == nil && !until.IsZero() {
		e.Validity = time.Until(until)
	}
	obs.Done(ctx, e)
	return err
}
