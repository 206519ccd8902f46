package redsync

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

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
	name    string
	channel string // the pub/sub channel announcing releases of name

	cfg   mutexConfig // what the options set; fixed once NewMutex returns
	rs    *Redsync
	nodes mutexNodes // the servers, in the order this Mutex tries them

	// invalid is the first bad argument or option found by NewMutex,
	// returned by every operation.
	invalid error

	// obs observes the Mutex's operations; nil when nobody does.
	obs Observer

	// args are script arguments that do not change, converted to
	// interfaces once rather than on every request.
	args struct {
		name, channel, shardedChannel, fenceKey, queueKey, entriesKey, expiryMillis, leaseMillis any
		// queueFenceKey is the fourth key of the fleet queue's scripts:
		// the fencing counter, or the name where the name has no queue
		// keys (a key of its slot, never touched then).
		queueFenceKey any
	}
	// fleet: the name has fleet queue keys (see handoff.QueueKeys).
	fleet bool

	mu   sync.Mutex // guards held
	held heldState
}

// mutexConfig is a Mutex's configuration, as NewMutex's options set it.
type mutexConfig struct {
	expiry time.Duration

	tries     int
	delayFunc DelayFunc

	driftFactor   float64
	timeoutFactor float64

	genValueFunc  func() (string, error)
	valueGiven    bool // WithValue was given (checked by checkConfig)
	shuffle       bool
	failFast      bool
	setNXOnExtend bool

	handoff bool // waiters listen for releases (WithHandoff)
	fencing bool // acquisitions agree on a fencing token (WithFencing)

	keepAliveInterval time.Duration // WithKeepAliveInterval; 0: a third of the expiry
}

// mutexNodes are the servers of a Mutex.
type mutexNodes struct {
	pools  []redis.Pool
	states []*nodeState // per pool, in the order of pools
	// order[i] is the index, among the pools given to New, of pools[i];
	// nil when they are in that order (see WithShufflePools).
	order    []int
	quorum   int
	inflight *inflightCount
}

// heldState is what a Mutex holds, guarded by Mutex.mu.
type heldState struct {
	value      string
	token      uint64 // the fencing token of value; 0 without one
	until      time.Time
	acquiredAt time.Time // the start of the attempt that acquired value; zero with WithValue
	hold       *holding  // the servers that may hold value; nil after Unlock
	// released: Unlock was called on value. Nothing may set the key
	// with value again (no KeepAlive, no Extend that sets a missing key).
	released bool
	keeper   *keeper // the background extension, while KeepAlive runs
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
	return m.held.value
}

// Until returns the time until which the lock is held for sure: the expiry
// minus the time acquiring (or extending) took and minus the clock drift.
// It is the zero time until a lock is acquired.
func (m *Mutex) Until() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held.until
}

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
	if m.nodes.order == nil {
		return node
	}
	return m.nodes.order[node]
}

// opTimeout is the per-server deadline of every operation.
func (m *Mutex) opTimeout() time.Duration {
	return perServerDeadline(m.cfg.expiry, m.cfg.timeoutFactor)
}

// drift is the part of the expiry set aside for clock drift.
func (m *Mutex) drift() time.Duration {
	return time.Duration(float64(m.cfg.expiry) * m.cfg.driftFactor)
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
