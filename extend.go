package redsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

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
	_, err := m.extend(ctx, OpExtend, m.cfg.setNXOnExtend)
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
	value, hold, validUntil, released := m.held.value, m.held.hold, m.held.until, m.held.released
	m.mu.Unlock()
	if value == "" {
		return roundResult{}, ErrNotHeld
	}
	r := extendRound{m: m, script: scripts.Extend, value: value, valueArg: value, hold: hold}
	if setNX && !released {
		// (After Unlock, an extension that set a missing key would bring
		// back a lock its holder gave up.)
		r.script = scripts.ExtendOrSet
	}
	start := time.Now()
	res := m.roundAtQuorum(ctx, r.extendOn, m.watchRound(ctx, op, 0), skipAlways)
	if res.ctxErr != nil {
		return res, errors.Join(res.err, res.ctxErr)
	}
	if res.n < m.nodes.quorum {
		return res, res.err
	}
	return res, m.extended(op, value, start, validUntil)
}

// extendRound is an extension on every server.
type extendRound struct {
	m        *Mutex
	script   *redis.Script
	value    string
	valueArg any // value, converted once for every request
	hold     *holding
}

// extendOn is the extension request to one server (a nodeOp).
func (r extendRound) extendOn(ctx context.Context, node int, pool redis.Pool) (bool, error) {
	reply, err := r.m.eval(ctx, pool, r.script, r.m.args.name, r.valueArg, r.m.args.expiryMillis)
	// Only the script's own replies count: a server that did not run it
	// has not extended anything.
	status, unexpected := scripts.ParseExtend(reply)
	// A key set again (it was missing) on a server after Unlock gave the
	// hold up is released again. An extension of a key that still existed
	// needs nothing: Unlock's release deletes it, before or after, and a
	// plain extend cannot bring a released key back.
	if unexpected == nil && status == scripts.ExtendSet && r.hold != nil && !r.hold.record(node) {
		r.m.releaseLate(pool, r.value)
	}
	if err != nil {
		return false, err
	}
	if unexpected != nil {
		return false, unexpected
	}
	return status != scripts.ExtendRefused, nil
}

// extended moves Until after a quorum extended value in a round that
// started at start, if the lock is still valid; validUntil is its
// validity before.
func (m *Mutex) extended(op Op, value string, start, validUntil time.Time) error {
	now := time.Now()
	if op == OpKeepAlive && !now.Before(validUntil) {
		// The replies came after the lock's validity ended (the process
		// was stopped, say): another holder may have had the lock in
		// between, and keys set again where they had expired would hide
		// it. KeepAlive extends only a lock that never lapsed.
		return fmt.Errorf("%w: the extension came back after the lock's validity ended", ErrLockLost)
	}
	until := start.Add(m.cfg.expiry - m.drift())
	if !now.Before(until) {
		return ErrExtendFailed
	}
	m.mu.Lock()
	if m.held.value == value {
		m.held.until = until
	}
	m.mu.Unlock()
	return nil
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
		nodes := make([]int, len(m.nodes.pools))
		for i := range nodes {
			nodes[i] = i
		}
		return false, &ErrTaken{Nodes: nodes}
	}
	res := m.roundAtQuorum(ctx, func(ctx context.Context, _ int, pool redis.Pool) (bool, error) {
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
	return res.n >= m.nodes.quorum, res.err
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
