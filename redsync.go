package redsync

import (
	"github.com/quorumlock/redsync/internal/handoff"
	"math/rand"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/quorum"
	"github.com/quorumlock/redsync/redis"
)

// Redsync makes Mutexes that lock on a fixed set of independent Redis
// servers. It is safe for concurrent use; one Redsync per set of servers is
// enough for a whole process.
type Redsync struct {
	pools []redis.Pool
	// invalid is what is wrong with pools (see checkPools), reported by
	// the first operation of every Mutex.
	invalid error
	// states tells, per pool, whether its server is backlogged.
	states []*nodeState

	// inflight counts the goroutines that talk to servers on behalf of this
	// Redsync's Mutexes, including replies still on their way after an
	// operation returned (see WithFailFast).
	inflight inflightCount

	// canListen: some pool is a redis.Subscriber, so releases can be
	// announced to waiters.
	canListen bool
	handoff   handoffState

	// engine runs the rounds of this Redsync's Mutexes: their workers,
	// and the deadline that rounds starting close together share (see
	// boundedContext).
	engine *quorum.Engine

	// observer is what SetObserver set; NewMutex gives it to each Mutex.
	observer atomic.Pointer[observerBox]
}

// New returns a Redsync over pools, one pool per independent Redis server
// (a node in Redlock's sense). A lock is held when a majority of them,
// len(pools)/2+1, agree. Bad pools are reported by the first operation of
// every Mutex as an *ArgumentError: none at all, a nil one (also a nil
// pointer in the interface, and what an adapter's NewPool returns for a
// nil client), or one Pool value given twice, which would count one server
// as two (pools that == cannot compare are not checked for that).
func New(pools ...redis.Pool) *Redsync {
	r := &Redsync{pools: pools, states: make([]*nodeState, len(pools)), invalid: checkPools(pools)}
	for i := range r.states {
		r.states[i] = &nodeState{}
	}
	r.engine = newEngine()
	for _, pool := range pools {
		if _, ok := pool.(redis.Subscriber); ok {
			r.canListen = true
		}
	}
	return r
}

// defaultTimeoutFactor is the timeout factor without WithTimeoutFactor.
const defaultTimeoutFactor = 0.05

// NewMutex returns a Mutex for name, the key that holds the lock on every
// server, configured by options. An empty name or a bad option is reported
// by the Mutex's first operation as an *ArgumentError.
func (r *Redsync) NewMutex(name string, options ...Option) *Mutex {
	m := &Mutex{
		name:    name,
		channel: releaseChannel(name),
		cfg: mutexConfig{
			expiry:        8 * time.Second,
			tries:         32,
			delayFunc:     randomDelay,
			genValueFunc:  genValue,
			driftFactor:   0.01,
			timeoutFactor: defaultTimeoutFactor,
			handoff:       true,
		},
		rs: r,
		nodes: mutexNodes{
			pools:    r.pools,
			states:   r.states,
			quorum:   len(r.pools)/2 + 1,
			inflight: &r.inflight,
		},
		obs: r.redsyncObserver(),
	}
	for _, o := range options {
		if o != nil {
			o.Apply(m)
		}
	}
	if m.held.value != "" {
		// WithValue: the lock was taken elsewhere; track what this Mutex
		// may set (an extend that sets a missing key) like its own.
		m.held.hold = newHolding(m.held.value, 0)
	}
	m.invalid = m.checkConfig()
	// The servers count the expiry in whole milliseconds: every validity
	// counts from what they are told.
	m.cfg.expiry = m.cfg.expiry.Truncate(time.Millisecond)
	if gen := m.cfg.genValueFunc; gen != nil {
		m.cfg.genValueFunc = func() (string, error) { return checkedValue(gen) }
	}
	m.args.name = m.name
	m.args.channel = m.channel
	m.args.shardedChannel = handoff.ShardedReleaseChannel(m.name)
	m.args.fenceKey = fenceKey(m.name)
	m.args.expiryMillis = m.cfg.expiry.Milliseconds()
	var queue, entries string
	queue, entries, m.fleet = handoff.QueueKeys(m.name)
	m.args.queueKey, m.args.entriesKey = queue, entries
	m.args.queueFenceKey = m.args.fenceKey
	if !m.fleet {
		m.args.queueFenceKey = m.name
	}
	m.args.leaseMillis = fleetLease.Milliseconds()
	if m.cfg.shuffle && m.invalid == nil {
		// Copies, so that shuffling never races with other Mutexes.
		m.nodes.pools = append([]redis.Pool(nil), m.nodes.pools...)
		m.nodes.states = append([]*nodeState(nil), m.nodes.states...)
		m.nodes.order = make([]int, len(m.nodes.pools))
		for i := range m.nodes.order {
			m.nodes.order[i] = i
		}
		rand.Shuffle(len(m.nodes.pools), func(i, j int) {
			m.nodes.pools[i], m.nodes.pools[j] = m.nodes.pools[j], m.nodes.pools[i]
			m.nodes.states[i], m.nodes.states[j] = m.nodes.states[j], m.nodes.states[i]
			m.nodes.order[i], m.nodes.order[j] = m.nodes.order[j], m.nodes.order[i]
		})
	}
	return m
}

// NewElection returns the Election on name, for one candidate, configured
// by options as a Mutex is: WithExpiry sets how long a leader that stops
// extending its lock (a crashed process) keeps the name, and so the
// longest time without a leader; WithTries bounds how long Campaign waits
// (unbounded by default: until its context ends). Fencing is always on.
// An empty name, a bad option, or WithValue (every Campaign makes a value
// of its own) is reported by every method as an *ArgumentError.
func (r *Redsync) NewElection(name string, options ...Option) *Election {
	opts := make([]Option, 0, len(options)+2)
	opts = append(opts, WithTries(electionTries))
	opts = append(opts, options...)
	opts = append(opts, WithFencing(true))
	e := &Election{rs: r, name: name, options: opts, recordKey: leaderKey(name)}
	e.reader = r.NewMutex(name, opts...)
	e.invalid = e.reader.invalid
	if e.invalid == nil && e.reader.cfg.valueGiven {
		e.invalid = &ArgumentError{Arg: "WithValue", Problem: "an Election makes a new lock value for every Campaign; give the candidate's value to Campaign"}
	}
	return e
}

// NewRWMutex returns the RWMutex on name, configured by options as a
// Mutex is (WithExpiry, WithTries, WithRetryDelay, WithDriftFactor,
// WithTimeoutFactor, WithGenValueFunc, WithHandoff, WithFencing, ...). An
// empty name, a bad option or WithValue is reported by every operation as
// an *ArgumentError.
func (r *Redsync) NewRWMutex(name string, options ...Option) *RWMutex {
	return newRWMutex(name, r.NewMutex(name, options...))
}

// Wait blocks until no request sent by this Redsync's Mutexes is still in
// flight, and its idle goroutines have exited. Operations return as soon as
// their outcome is decided, and a request to a slow server may complete
// after that (what it did is then undone if it was not wanted), for at
// most the Mutex's expiry, or until the client's own read timeout when it
// does not follow context deadlines (go-redis without
// ContextTimeoutEnabled). A hand-off listener whose server does not
// confirm that nobody waits any more gives its connection up after a
// second. Call Wait before closing the clients behind the pools, for
// example at shutdown or at the end of a test that checks for leaked
// goroutines. Lock and the other operations may run concurrently with
// Wait; Wait then also waits for their requests.
func (r *Redsync) Wait() {
	r.inflight.wait()
	r.engine.StopIdle()
}
