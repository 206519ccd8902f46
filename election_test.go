package redsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// electionFleet is a set of real servers and, per candidate "process", a
// Redsync with clients of its own, whose calls fail once it is killed.
type electionFleet struct {
	servers []*redistest.Server
	inspect []*goredislib.Client
}

func newElectionFleet(t *testing.T, n int) *electionFleet {
	t.Helper()
	f := &electionFleet{servers: redistest.Start(t, n)}
	for _, s := range f.servers {
		f.inspect = append(f.inspect, s.Client(t))
	}
	return f
}

// process is one candidate's process: its Redsync, and the switch that
// kills it (every call of its pools fails from then on).
type process struct {
	rs     *Redsync
	killed atomic.Bool
}

var errKilled = errors.New("test: the process was killed")

func (f *electionFleet) process(t *testing.T) *process {
	t.Helper()
	p := &process{}
	fail := fakepool.Before(func(*fakepool.Call) error {
		if p.killed.Load() {
			return errKilled
		}
		return nil
	})
	pools := make([]redis.Pool, len(f.servers))
	for i, s := range f.servers {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		hook := fakepool.New(goredis.NewPool(client))
		for _, m := range []fakepool.Method{fakepool.PoolGet, fakepool.PoolSubscribe, fakepool.Eval, fakepool.Get, fakepool.SetNX, fakepool.PTTL} {
			hook.On(m, fail)
		}
		pools[i] = hook.Listening()
	}
	p.rs = New(pools...)
	t.Cleanup(p.rs.Wait)
	return p
}

// keyCount returns how many servers hold key.
func (f *electionFleet) keyCount(t *testing.T, key string) int {
	t.Helper()
	n := 0
	for _, c := range f.inspect {
		got, err := c.Exists(context.Background(), key).Result()
		require.NoError(t, err)
		n += int(got)
	}
	return n
}

var electionSizes = []int{1, 3, 5}

// readLeader is e.Leader, tried again when a server missed its deadline
// (50 ms with a 1 s expiry, which a busy machine running the race
// detector may miss).
func readLeader(t *testing.T, e *Election) (Leader, error) {
	t.Helper()
	var l Leader
	var err error
	for range 5 {
		if l, err = e.Leader(context.Background()); err == nil || errors.Is(err, ErrNoLeader) {
			break
		}
	}
	return l, err
}

func TestElectionOneLeaderAtATimeWithIncreasingTerms(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const candidates, terms = 3, 3
			var leaders atomic.Int32
			var mu sync.Mutex // guards won
			var won []uint64  // the terms, in the order they were won
			var wg sync.WaitGroup
			for c := range candidates {
				p := f.process(t)
				wg.Go(func() {
					e := p.rs.NewElection("elect-one", WithExpiry(2*time.Second))
					for range terms {
						value := fmt.Sprintf("candidate-%d", c)
						if !assert.NoError(t, e.Campaign(context.Background(), value)) {
							return
						}
						assert.Equal(t, int32(1), leaders.Add(1), "two leaders at once")
						mu.Lock()
						won = append(won, e.Term())
						mu.Unlock()
						l, err := readLeader(t, e)
						if assert.NoError(t, err) {
							assert.Equal(t, value, l.Value)
							assert.Equal(t, e.Term(), l.Term)
							assert.True(t, l.Until.After(time.Now()))
						}
						time.Sleep(5 * time.Millisecond)
						leaders.Add(-1)
						assert.NoError(t, e.Resign(context.Background()))
						assert.ErrorIs(t, context.Cause(e.Context()), ErrUnlocked)
					}
				})
			}
			wg.Wait()
			require.Len(t, won, candidates*terms)
			for i := 1; i < len(won); i++ {
				assert.Greater(t, won[i], won[i-1], "term %d after term %d", won[i], won[i-1])
			}
		})
	}
}

func TestElectionResignHandsOverInCampaignOrder(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "elect-order"
			a, b, c := f.process(t), f.process(t), f.process(t)
			ea, eb, ec := a.rs.NewElection(name), b.rs.NewElection(name), c.rs.NewElection(name)
			require.NoError(t, ea.Campaign(context.Background(), "a"))

			results := make(chan string, 2)
			campaign := func(e *Election, value string) {
				if assert.NoError(t, e.Campaign(context.Background(), value)) {
					results <- value
				}
			}
			go campaign(eb, "b")
			awaitIdleWaiter(t, b.rs, name)
			go campaign(ec, "c")
			awaitIdleWaiter(t, c.rs, name)

			require.NoError(t, ea.Resign(context.Background()))
			require.Equal(t, "b", <-results)
			l, err := readLeader(t, ea)
			require.NoError(t, err)
			assert.Equal(t, "b", l.Value)
			assert.Greater(t, l.Term, ea.Term())

			require.NoError(t, eb.Resign(context.Background()))
			require.Equal(t, "c", <-results)
			assert.Greater(t, ec.Term(), eb.Term())
			require.NoError(t, ec.Resign(context.Background()))
		})
	}
}

func TestElectionKilledLeaderIsToldBeforeUntilAndReplaced(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "elect-killed"
			expiry := time.Second
			a, b := f.process(t), f.process(t)
			ea := a.rs.NewElection(name, WithExpiry(expiry))
			eb := b.rs.NewElection(name, WithExpiry(expiry))
			require.NoError(t, ea.Campaign(context.Background(), "a"))

			won := make(chan error, 1)
			go func() { won <- eb.Campaign(context.Background(), "b") }()
			awaitIdleWaiter(t, b.rs, name)

			a.killed.Store(true)
			<-ea.Done()
			// KeepAlive's cause for a loss it tells before Until (its own
			// tests time it; a timer here would fail on a busy machine).
			assert.ErrorIs(t, context.Cause(ea.Context()), ErrLockLost)
			assert.ErrorIs(t, ea.Proclaim(context.Background(), "a2"), ErrNotLeader)

			require.NoError(t, <-won)
			assert.Greater(t, eb.Term(), ea.Term())
			got, err := readLeader(t, eb)
			require.NoError(t, err)
			assert.Equal(t, "b", got.Value)
			require.NoError(t, eb.Resign(context.Background()))
			require.NoError(t, ea.Resign(context.Background()), "resigning a lost leadership")
		})
	}
}

func TestElectionCancelledCampaignLeavesNothing(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "elect-cancel"
			a, b := f.process(t), f.process(t)
			ea, eb := a.rs.NewElection(name), b.rs.NewElection(name)
			require.NoError(t, ea.Campaign(context.Background(), "a"))

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- eb.Campaign(ctx, "b") }()
			awaitIdleWaiter(t, b.rs, name)
			cancel()
			err := <-done
			assert.ErrorIs(t, err, context.Canceled)
			assert.ErrorIs(t, err, ErrFailed)

			// Campaign may be called again after a failure.
			short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
			assert.ErrorIs(t, eb.Campaign(short, "b"), context.DeadlineExceeded)
			stop()

			require.NoError(t, ea.Resign(context.Background()))
			a.rs.Wait() // releases still on their way
			b.rs.Wait()
			assert.Zero(t, f.keyCount(t, name), "the lock was handed to a cancelled candidate")
			queue, entries, _ := handoff.QueueKeys(name)
			assert.Zero(t, f.keyCount(t, queue))
			assert.Zero(t, f.keyCount(t, entries))
			_, err = readLeader(t, eb)
			assert.ErrorIs(t, err, ErrNoLeader)
		})
	}
}

func TestElectionObserveReportsEveryLeaderInOrder(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "elect-observe"
			a, b, o := f.process(t), f.process(t), f.process(t)
			ea, eb := a.rs.NewElection(name), b.rs.NewElection(name)
			ctx, cancel := context.WithCancel(context.Background())
			seen := o.rs.NewElection(name).Observe(ctx)

			require.NoError(t, ea.Campaign(context.Background(), "a"))
			first := <-seen
			assert.Equal(t, "a", first.Value)
			assert.Equal(t, ea.Term(), first.Term)

			require.NoError(t, ea.Proclaim(context.Background(), "a2"))
			second := <-seen
			assert.Equal(t, "a2", second.Value)
			assert.Equal(t, first.Term, second.Term)

			won := make(chan error, 1)
			go func() { won <- eb.Campaign(context.Background(), "b") }()
			awaitIdleWaiter(t, b.rs, name)
			require.NoError(t, ea.Resign(context.Background()))
			require.NoError(t, <-won)
			third := <-seen
			assert.Equal(t, "b", third.Value)
			assert.Equal(t, eb.Term(), third.Term)
			assert.Greater(t, third.Term, second.Term)

			require.NoError(t, eb.Resign(context.Background()))
			cancel()
			for range seen {
			}
		})
	}
}

func TestElectionObservePollsPoolsThatCannotListen(t *testing.T) {
	f := newElectionFleet(t, 3)
	var pools []redis.Pool
	for _, c := range f.inspect {
		pools = append(pools, fakepool.New(goredis.NewPool(c))) // no Subscriber
	}
	rs := New(pools...)
	t.Cleanup(rs.Wait)
	e := rs.NewElection("elect-poll")
	ctx, cancel := context.WithCancel(context.Background())
	seen := rs.NewElection("elect-poll").Observe(ctx)
	require.NoError(t, e.Campaign(context.Background(), "x"))
	l := <-seen
	assert.Equal(t, "x", l.Value)
	require.NoError(t, e.Resign(context.Background()))
	cancel()
	for range seen {
	}
}

func TestElectionBadArguments(t *testing.T) {
	f := newElectionFleet(t, 1)
	rs := f.process(t).rs
	var nilCtx context.Context
	var argErr *ArgumentError
	tests := []struct {
		name string
		err  func() error
		arg  string
	}{
		{"empty name", func() error { return rs.NewElection("").Campaign(context.Background(), "v") }, "name"},
		{"WithValue", func() error { return rs.NewElection("n", WithValue("x")).Campaign(context.Background(), "v") }, "WithValue"},
		{"bad option", func() error { return rs.NewElection("n", WithTries(0)).Campaign(context.Background(), "v") }, "WithTries"},
		{"nil ctx Campaign", func() error { return rs.NewElection("n").Campaign(nilCtx, "v") }, "ctx"},
		{"empty value", func() error { return rs.NewElection("n").Campaign(context.Background(), "") }, "value"},
		{"nil ctx Leader", func() error { _, err := rs.NewElection("n").Leader(nilCtx); return err }, "ctx"},
		{"nil ctx Resign", func() error { return rs.NewElection("n").Resign(nilCtx) }, "ctx"},
		{"nil ctx Proclaim", func() error { return rs.NewElection("n").Proclaim(nilCtx, "v") }, "ctx"},
		{"empty Proclaim", func() error { return rs.NewElection("n").Proclaim(context.Background(), "") }, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			require.ErrorAs(t, err, &argErr)
			assert.Equal(t, tt.arg, argErr.Arg)
			assert.ErrorIs(t, err, ErrInvalidArgument)
		})
	}

	t.Run("Campaign while leading", func(t *testing.T) {
		e := rs.NewElection("twice")
		require.NoError(t, e.Campaign(context.Background(), "v"))
		require.ErrorAs(t, e.Campaign(context.Background(), "v"), &argErr)
		assert.Equal(t, "Campaign", argErr.Arg)
		require.NoError(t, e.Resign(context.Background()))
	})
	t.Run("not leading", func(t *testing.T) {
		e := rs.NewElection("idle")
		assert.ErrorIs(t, e.Proclaim(context.Background(), "v"), ErrNotLeader)
		assert.NoError(t, e.Resign(context.Background()))
		assert.ErrorIs(t, context.Cause(e.Context()), ErrNotLeader)
		assert.Zero(t, e.Term())
		_, err := readLeader(t, e)
		assert.ErrorIs(t, err, ErrNoLeader)
		closed := e.Observe(nilCtx)
		_, open := <-closed
		assert.False(t, open)
	})
}

func TestElectionPlainMutexOnTheNameIsNoLeader(t *testing.T) {
	f := newElectionFleet(t, 3)
	p := f.process(t)
	m := p.rs.NewMutex("elect-plain")
	require.NoError(t, m.Lock())
	e := p.rs.NewElection("elect-plain")
	_, err := readLeader(t, e)
	assert.ErrorIs(t, err, ErrNoLeader)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, e.Campaign(short, "v"), context.DeadlineExceeded, "a candidate led while a Mutex held the name")
	_, err = m.Unlock()
	require.NoError(t, err)
}

func TestDecideLeader(t *testing.T) {
	rec := func(lock string, ttl int64, recLock string, term, seq uint64, value string) *scripts.LeaderRead {
		return &scripts.LeaderRead{Lock: lock, TTL: ttl, RecordLock: recLock, Term: term, Seq: seq, Value: value}
	}
	tests := []struct {
		name  string
		reads []*scripts.LeaderRead
		want  Leader
		ttl   time.Duration
		found bool
	}{
		{"quorum with record", []*scripts.LeaderRead{rec("L", 900, "L", 7, 1, "a"), rec("L", 1000, "L", 7, 1, "a"), nil}, Leader{Value: "a", Term: 7, seq: 1}, 900 * time.Millisecond, true},
		{"latest proclaim wins", []*scripts.LeaderRead{rec("L", 900, "L", 7, 1, "a"), rec("L", 1000, "L", 7, 2, "b"), rec("L", 800, "L", 7, 1, "a")}, Leader{Value: "b", Term: 7, seq: 2}, 900 * time.Millisecond, true},
		{"stale record", []*scripts.LeaderRead{rec("L2", 900, "L", 7, 1, "a"), rec("L2", 1000, "L", 7, 1, "a"), nil}, Leader{}, 0, false},
		{"no quorum", []*scripts.LeaderRead{rec("L", 900, "L", 7, 1, "a"), rec("M", 1000, "M", 8, 1, "b"), rec("", -2, "", 0, 0, "")}, Leader{}, 0, false},
		{"no expiry is not a leader", []*scripts.LeaderRead{rec("L", -1, "L", 7, 1, "a"), rec("L", -1, "L", 7, 1, "a"), nil}, Leader{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ttl, found := decideLeader(tt.reads, 2)
			assert.Equal(t, tt.found, found)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.ttl, ttl)
		})
	}
}
