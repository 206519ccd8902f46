package redsync

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// An Election elects one leader at a time among the candidates that
// campaign on its name, in any number of processes. It is modelled on
// etcd's concurrency.Election (Campaign, Proclaim, Resign, Leader,
// Observe), built on this package's Mutex:
//
//   - A candidate leads while it holds a fenced Mutex (WithFencing) on the
//     name, kept alive in the background (KeepAlive). Its Term is that
//     Mutex's fencing token, so every new leader's term is strictly larger
//     than every earlier leader's, across the fleet: storage that refuses
//     writes with a term smaller than the largest it saw refuses a leader
//     that was paused past its lease and woke up after another took over.
//   - One leader at a time is the Mutex's mutual exclusion: two leaders
//     would be two holders of the lock, each on a quorum of servers, and
//     any two quorums share a server, which holds one value only.
//   - Leadership that can no longer be proven (no extension succeeded in
//     time, a quorum holds another value, the process was paused) ends
//     before Until: Context is cancelled with a cause wrapping
//     ErrLockLost, and Done is closed.
//   - Candidates take turns in the order they campaigned: waiting
//     candidates queue in the servers' fleet queue, and a Resign hands the
//     key to the first of them in about one round trip (see WithHandoff).
//
// The proclaimed value is not the lock value, which stays random and
// unique to the acquisition (the release, extension and hand-over scripts
// compare it, and a Proclaim changes the value within a term). It lives
// in a record beside the lock key, in the same Redis Cluster hash slot
// ("{name}:redsync:leader", or name+":redsync:leader" for a name with a
// hash tag): a hash of the lock value it was written for, the term, a
// sequence number and the value, written to a quorum by a script that
// checks the lock key holds the leader's lock value. Leader counts a
// record only where the lock key still holds that lock value, so a stale
// record is never read as the leader. A redsync v4 process (or a Mutex)
// locking the name sees and excludes candidates as it would any holder;
// while it holds the name nobody leads.
//
// Where it differs from etcd: there is no session shared by several
// elections (each leadership keeps its own lock alive); a candidate that
// is not leading holds no key, so Leader never reports a waiting
// candidate; Observe reports leaders only (not "no leader"), and may
// skip a leader that led for less time than a read takes.
//
// An Observer (WithObserver) sees OpCampaign (with the OpLock of the
// leadership's Mutex within it), OpProclaim and OpResign (with its
// OpUnlock); the leadership's extensions are OpKeepAlive, and its loss a
// Lost event.
//
// An Election stands for one candidate: its methods are safe to call
// from several goroutines, but Campaign while it campaigns or leads is
// refused.
type Election struct {
	rs        *Redsync
	name      string
	options   []Option
	recordKey string
	// reader runs the rounds of Leader and Observe; it never locks.
	reader  *Mutex
	invalid error

	mu    sync.Mutex // guards state and lead
	state electionState
	lead  *leadership // the last leadership won; nil before
}

// electionState is what an Election's candidate is doing.
type electionState uint8

const (
	electionIdle electionState = iota
	electionCampaigning
	electionLeading
)

// Leader is a leader of an Election, as a quorum of servers reports it.
type Leader struct {
	// Value is what the leader proclaimed (Campaign, Proclaim).
	Value string
	// Term is the leader's fencing token: strictly larger for every new
	// leader of the name.
	Term uint64
	// Until is when the leadership ends unless the leader's lock is
	// extended: at least a quorum of servers hold it until then (less the
	// clock drift allowance).
	Until time.Time

	seq uint64 // the record's sequence number within the term
}

// leadership is one term led by an Election's candidate.
type leadership struct {
	m    *Mutex
	ctx  context.Context // the Mutex's KeepAlive context
	term uint64

	mu    sync.Mutex // guards value and seq
	value string
	seq   uint64

	stop chan struct{} // closed by Resign
	done chan struct{} // closed when watch returns
}

// leaderSuffix ends the key of an election's leader record.
const leaderSuffix = ":redsync:leader"

// leaderKey returns the key of name's leader record, in the hash slot of
// name whenever that is possible, as the fencing counter is.
func leaderKey(name string) string {
	return strings.TrimSuffix(fencing.Key(name), fencing.Suffix) + leaderSuffix
}

// electionTries is the number of tries a Campaign makes without
// WithTries: a candidate waits until it leads or its context ends.
const electionTries = math.MaxInt32

// recordTTL is how long a leader record lives after it is written; the
// leader writes it again every recordRefresh.
const (
	recordTTL     = 24 * time.Hour
	recordRefresh = time.Hour
)

// Name returns the election's name, the key of its lock.
func (e *Election) Name() string { return e.name }

// check returns the error of bad arguments: the Election's, or a nil ctx.
func (e *Election) check(ctx context.Context) error {
	if e.invalid != nil {
		return e.invalid
	}
	if ctx == nil {
		return &ArgumentError{Arg: "ctx", Problem: "nil context; pass context.Background() or a context of your own"}
	}
	return nil
}

// Campaign blocks until the candidate leads, with value proclaimed, or
// ctx ends, or the tries set with WithTries run out. Candidates are
// elected in the order they campaigned. On success the leadership is kept
// alive in the background until Resign, or until it can no longer be
// proven (see Context). On failure Campaign returns Lock's error
// (matching ctx.Err() when ctx ended) and leaves nothing on any server:
// neither a lock nor a place in the queue.
//
// An empty value, a nil ctx, and a Campaign while the Election campaigns
// or leads already are refused with an *ArgumentError.
func (e *Election) Campaign(ctx context.Context, value string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if value == "" {
		return &ArgumentError{Arg: "value", Problem: "Campaign was given an empty value; the value tells the other candidates who leads"}
	}
	e.mu.Lock()
	if e.state != electionIdle {
		e.mu.Unlock()
		return &ArgumentError{Arg: "Campaign", Problem: "the Election campaigns or leads already; one Election is one candidate: Resign first, or campaign with another Election"}
	}
	e.state = electionCampaigning
	e.mu.Unlock()

	var lead *leadership
	err := e.reader.observeOp(ctx, OpCampaign, e.reader.cfg.tries, func(ctx context.Context, ev *DoneEvent) error {
		var err error
		if lead, err = e.win(ctx, value); err == nil {
			ev.Token, ev.Validity = lead.term, time.Until(lead.m.Until())
		}
		return err
	})

	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.state = electionIdle
		return err
	}
	e.state = electionLeading
	e.lead = lead
	go e.watch(lead)
	return nil
}

// win acquires the election's lock, keeps it alive and proclaims value.
func (e *Election) win(ctx context.Context, value string) (*leadership, error) {
	m := e.rs.NewMutex(e.name, e.options...)
	if err := m.LockContext(ctx); err != nil {
		return nil, err
	}
	giveUp := func() { _, _ = m.UnlockContext(context.WithoutCancel(ctx)) }
	held, err := m.KeepAlive(context.WithoutCancel(ctx))
	if err != nil {
		giveUp()
		return nil, err
	}
	lead := &leadership{m: m, ctx: held, term: m.Token(), value: value, seq: 1,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := e.proclaim(ctx, lead, value, 1, m.watchRound(ctx, OpProclaim, 0)); err != nil {
		giveUp()
		return nil, err
	}
	return lead, nil
}

// watch is the goroutine of a leadership, stopped by Resign: it writes
// the record again before it expires, and when the leadership is lost it
// releases what is left of the lock, so that the next candidate need not
// wait for the expiry on the servers that still hold it.
func (e *Election) watch(lead *leadership) {
	defer close(lead.done)
	refresh := time.NewTicker(recordRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-lead.stop:
			return
		case <-lead.ctx.Done():
			e.mu.Lock()
			if e.lead == lead {
				e.state = electionIdle
			}
			e.mu.Unlock()
			_, _ = lead.m.UnlockContext(context.Background())
			return
		case <-refresh.C:
			lead.mu.Lock()
			value, seq := lead.value, lead.seq
			lead.mu.Unlock()
			_ = e.proclaim(lead.ctx, lead, value, seq, nil)
		}
	}
}

// Proclaim changes the value the leader shows to others, within its term.
// It returns ErrNotLeader when the candidate does not lead, and an error
// when a quorum of servers did not store the value (the old one may still
// be shown then). A nil ctx or an empty value is an *ArgumentError.
func (e *Election) Proclaim(ctx context.Context, value string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if value == "" {
		return &ArgumentError{Arg: "value", Problem: "Proclaim was given an empty value"}
	}
	lead := e.leading()
	if lead == nil {
		return ErrNotLeader
	}
	lead.mu.Lock()
	lead.seq++
	lead.value = value
	seq := lead.seq
	lead.mu.Unlock()
	return e.reader.observeOp(ctx, OpProclaim, 0, func(ctx context.Context, _ *DoneEvent) error {
		return e.proclaim(ctx, lead, value, seq, lead.m.watchRound(ctx, OpProclaim, 0))
	})
}

// leading returns the leadership, nil when the candidate does not lead.
func (e *Election) leading() *leadership {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != electionLeading || e.lead.ctx.Err() != nil {
		return nil
	}
	return e.lead
}

// proclaim writes lead's record with value and seq on a quorum of
// servers; watch, when not nil, reports the replies to the Observer.
func (e *Election) proclaim(ctx context.Context, lead *leadership, value string, seq uint64, watch *roundWatch) error {
	m := lead.m
	lockValue := m.Value()
	args := []any{m.name, e.recordKey, lockValue, strconv.FormatUint(lead.term, 10),
		strconv.FormatUint(seq, 10), value, recordTTL.Milliseconds()}
	res := m.roundAtQuorum(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, scripts.Proclaim, args...)
		if err != nil {
			return false, err
		}
		return scripts.ParseProclaim(reply)
	}, watch, nil)
	if res.n >= m.nodes.quorum {
		return nil
	}
	return errors.Join(fmt.Errorf("redsync: proclaiming %q as leader of %q: %d servers stored it, %d needed",
		value, e.name, res.n, m.nodes.quorum), res.err, res.ctxErr)
}

// Resign gives leadership up: the lock is released, and handed at once
// to the first waiting candidate. Context is cancelled, with the cause
// ErrUnlocked. Resign when the candidate does not lead (never did,
// resigned already, or lost its leadership) returns nil and sends
// nothing. A nil ctx is an *ArgumentError; when ctx ends first, the
// release still completes in the background (see UnlockContext).
func (e *Election) Resign(ctx context.Context) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	lead := e.lead
	if e.state != electionLeading {
		e.mu.Unlock()
		return nil
	}
	e.state = electionIdle
	e.mu.Unlock()
	return e.reader.observeOp(ctx, OpResign, 0, func(ctx context.Context, _ *DoneEvent) error {
		close(lead.stop)
		<-lead.done
		if lead.ctx.Err() != nil {
			// Lost before Resign: watch released what was left, or will.
			return nil
		}
		_, err := lead.m.UnlockContext(ctx)
		return err
	})
}

// Term returns the term of the leadership this candidate won last (see
// Leader.Term), also after it ended; 0 before the first.
func (e *Election) Term() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lead == nil {
		return 0
	}
	return e.lead.term
}

// notLeadingContext is the Context of an Election that never led.
var notLeadingContext = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrNotLeader)
	return ctx
}()

// Context returns the context of the leadership this candidate won last:
// it is cancelled the moment the leadership ends, before Until when it
// can no longer be proven (the cause, context.Cause, wraps ErrLockLost
// and says why) or at Resign (the cause is ErrUnlocked). Work done as
// leader should stop when it is done. Before the first Campaign won it is
// a context cancelled with the cause ErrNotLeader.
func (e *Election) Context() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lead == nil {
		return notLeadingContext
	}
	return e.lead.ctx
}

// Done returns a channel closed when the leadership this candidate won
// last ends: Context().Done().
func (e *Election) Done() <-chan struct{} {
	return e.Context().Done()
}

// Leader returns the current leader of the election, as a quorum of
// servers stores it, whichever process it runs in. It returns an error
// wrapping ErrNoLeader when nobody leads: the name is free, or held by a
// Mutex (or a redsync process) that did not campaign, or by a candidate
// that won and has not yet proclaimed its value. A nil ctx or a bad
// Election is an *ArgumentError; servers that fail so that no quorum
// answers give an error naming them.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	if err := e.check(ctx); err != nil {
		return Leader{}, err
	}
	m := e.reader
	reads := make([]*scripts.LeaderRead, len(m.nodes.pools))
	var mu sync.Mutex // guards reads and failed
	var failed []error
	start := time.Now()
	// Every reply counts as a refusal, so that the round waits for every
	// server (or the per-server deadline): a quorum of replies may not
	// yet show the quorum that holds the lock.
	res := m.round(ctx, func(ctx context.Context, node int, pool redis.Pool) (bool, error) {
		reply, err := m.eval(ctx, pool, scripts.ReadLeader, m.args.name, e.recordKey)
		var read scripts.LeaderRead
		if err == nil {
			read, err = scripts.ParseReadLeader(reply)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, fmt.Errorf("node #%d: %w", m.serverIndex(node), err))
			return false, err
		}
		reads[node] = &read
		return false, nil
	}, nil, nil)
	if res.ctxErr != nil {
		return Leader{}, errors.Join(fmt.Errorf("redsync: reading the leader of %q", e.name), res.ctxErr)
	}
	mu.Lock()
	got := slices.Clone(reads)
	failures := slices.Clone(failed)
	mu.Unlock()
	l, ttl, found := decideLeader(got, m.nodes.quorum)
	if found {
		l.Until = start.Add(ttl - m.drift())
		return l, nil
	}
	if answered := len(got) - countNil(got); answered < m.nodes.quorum {
		for node, r := range got {
			if r == nil && len(failures) < len(got)-answered {
				failures = append(failures, fmt.Errorf("node #%d: no reply within the per-server deadline (%v)", m.serverIndex(node), m.opTimeout()))
			}
		}
		return Leader{}, errors.Join(append([]error{fmt.Errorf("redsync: reading the leader of %q: %d servers answered, %d needed",
			e.name, answered, m.nodes.quorum)}, failures...)...)
	}
	return Leader{}, fmt.Errorf("%w of %q", ErrNoLeader, e.name)
}

// decideLeader returns the leader that reads show on a quorum: a lock
// value held (with an expiry) on at least quorum servers, and the record
// written for it with the largest sequence number, and the quorum's time
// to live: the time at least quorum servers hold the lock.
func decideLeader(reads []*scripts.LeaderRead, quorum int) (Leader, time.Duration, bool) {
	holders := map[string][]int64{}
	for _, r := range reads {
		if r != nil && r.Lock != "" && r.TTL > 0 {
			holders[r.Lock] = append(holders[r.Lock], r.TTL)
		}
	}
	for value, ttls := range holders {
		if len(ttls) < quorum {
			continue
		}
		var l Leader
		found := false
		for _, r := range reads {
			if r != nil && r.Lock == value && r.RecordLock == value && (!found || r.Seq > l.seq) {
				l = Leader{Value: r.Value, Term: r.Term, seq: r.Seq}
				found = true
			}
		}
		if !found {
			return Leader{}, 0, false
		}
		slices.Sort(ttls)
		slices.Reverse(ttls)
		return l, time.Duration(ttls[quorum-1]) * time.Millisecond, true
	}
	return Leader{}, 0, false
}

// countNil returns how many reads are missing.
func countNil(reads []*scripts.LeaderRead) int {
	n := 0
	for _, r := range reads {
		if r == nil {
			n++
		}
	}
	return n
}
