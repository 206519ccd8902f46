package redsync

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acquireRelease acquires weight permits of sem, returns the lease's token
// and releases it.
func acquireRelease(t *testing.T, sem *Semaphore, weight int) uint64 {
	t.Helper()
	lease, err := sem.Acquire(context.Background(), weight)
	require.NoError(t, err)
	require.NoError(t, lease.Release(context.Background()))
	return lease.Token()
}

// tokenSequence checks that each token it is given is larger than the one
// before.
type tokenSequence struct {
	t    *testing.T
	last uint64
}

func (s *tokenSequence) next(token uint64, what string) {
	s.t.Helper()
	require.Greater(s.t, token, s.last, what)
	s.last = token
}

func TestMultiMutexTokensOrderAgainstTheMutexesOfItsNames(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		fenced := WithFencing(true)
		seq := &tokenSequence{t: t}
		seq.next(lockUnlock(t, c.rs.NewMutex("a", fenced)), "a Mutex on a")
		seq.next(lockUnlock(t, c.rs.NewMultiMutex([]string{"a", "b"}, fenced)), "a MultiMutex on a, b")
		seq.next(lockUnlock(t, c.rs.NewMutex("b", fenced)), "a Mutex on b")
		seq.next(lockUnlock(t, c.rs.NewMultiMutex([]string{"c", "b", "a"}, fenced)), "a MultiMutex on c, b, a")
		seq.next(lockUnlock(t, c.rs.NewMutex("c", fenced)), "a Mutex on c")

		// The counters of every name hold the last token written back to
		// them, on a quorum at least.
		c.rs.Wait()
		mm := c.rs.NewMultiMutex([]string{"a", "b", "c"}, fenced)
		require.NoError(t, mm.Lock())
		held := 0
		for _, name := range []string{"a", "b", "c"} {
			for _, v := range c.values(t, fenceKey(name)) {
				if v == strconv.FormatUint(mm.Token(), 10) {
					held++
				}
			}
		}
		assert.GreaterOrEqual(t, held, 3*(len(c.servers)/2+1))
		assert.Equal(t, repeated(mm.Value(), len(c.servers)), c.values(t, "a"), "fencing changes nothing on the lock keys")
		ok, err := mm.Extend()
		require.True(t, ok, err)
		token := mm.Token()
		ok, err = mm.Unlock()
		require.True(t, ok, err)
		assert.Equal(t, token, mm.Token(), "the token outlives Extend and Unlock")
		assert.Zero(t, c.rs.NewMultiMutex([]string{"a"}).Token(), "no token without fencing")
	})
}

func TestSemaphoreTokensGrowWithEveryAcquisition(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		sem := c.rs.NewSemaphore("fenced", 3, WithFencing(true))
		seq := &tokenSequence{t: t}
		for i := 0; i < 4; i++ {
			seq.next(acquireRelease(t, sem, 1+i%3), "one after another")
		}
		// Leases held together: each acquired after the others returned
		// has a larger token.
		var leases []*Lease
		for i := 0; i < 3; i++ {
			lease, err := sem.Acquire(context.Background(), 1)
			require.NoError(t, err)
			seq.next(lease.Token(), "while the earlier leases are held")
			leases = append(leases, lease)
		}
		ok, err := leases[0].Extend(context.Background())
		require.True(t, ok, err)
		for _, lease := range leases {
			token := lease.Token()
			require.NoError(t, lease.Release(context.Background()))
			assert.Equal(t, token, lease.Token())
		}
		seq.next(acquireRelease(t, sem, 3), "after them")
		assert.Zero(t, acquireRelease(t, c.rs.NewSemaphore("fenced", 3), 1), "no token without fencing")
	})
}

// TestTokensGrowPastAQuorumOfServersRestartedEmpty: a quorum of servers
// restarted empty has lost every counter; the servers' clocks, which moved
// on, are the floor.
func TestTokensGrowPastAQuorumOfServersRestartedEmpty(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(strconv.Itoa(n)+"servers", func(t *testing.T) {
			c := newRealCluster(t, n)
			fenced := []Option{WithFencing(true), WithExpiry(2 * time.Second), WithRetryDelay(20 * time.Millisecond)}
			sem := c.rs.NewSemaphore("restarted", 2, fenced...)
			names := []string{"r1", "r2"}
			// The semaphore has a counter of its own.
			seq, semSeq := &tokenSequence{t: t}, &tokenSequence{t: t}
			round := func(what string) {
				t.Helper()
				seq.next(lockUnlock(t, c.rs.NewMutex("r1", fenced...)), what+": Mutex")
				seq.next(lockUnlock(t, c.rs.NewMultiMutex(names, fenced...)), what+": MultiMutex")
				semSeq.next(acquireRelease(t, sem, 1), what+": Semaphore")
				semSeq.next(acquireRelease(t, sem, 2), what+": Semaphore")
			}
			round("before")
			c.rs.Wait()
			// A quorum restarts empty; the others stay down, so that the
			// next acquisitions see empty servers only.
			quorum := n/2 + 1
			for i, s := range c.servers {
				if i < quorum {
					s.Restart(t)
				} else {
					s.Kill(t)
				}
			}
			round("a quorum restarted empty, the others down")
			for _, s := range c.servers[quorum:] {
				s.Restart(t)
			}
			round("every server back")
		})
	}
}

// TestMultiKeyTokensAreAgreedThroughTheQuorum: with the servers' clocks
// standing still only the counters make tokens grow, and two quorums
// share one server only: the token must come through it.
func TestMultiKeyTokensAreAgreedThroughTheQuorum(t *testing.T) {
	servers, pools := miniPools(t, 5)
	rs := New(pools...)
	defer rs.Wait()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, s := range servers {
		s.SetTime(t0)
	}
	only := func(nodes ...int) {
		rs.Wait()
		for i, s := range servers {
			s.SetError("ERR down for the test")
			for _, n := range nodes {
				if n == i {
					s.SetError("")
				}
			}
		}
	}
	fenced := WithFencing(true)
	only(0, 1, 2)
	first := lockUnlock(t, rs.NewMutex("a", fenced))
	assert.Equal(t, uint64(t0.UnixMicro()), first, "the first token is the clock")
	only(2, 3, 4)
	second := lockUnlock(t, rs.NewMultiMutex([]string{"b", "a"}, fenced))
	assert.Equal(t, first+1, second, "through server 2's counter of a")
	only(0, 1, 4)
	third := lockUnlock(t, rs.NewMutex("b", fenced))
	assert.Equal(t, second+1, third, "through server 4's counter of b")

	sem := rs.NewSemaphore("s", 2, fenced)
	only(0, 1, 2)
	held, err := sem.Acquire(context.Background(), 1)
	require.NoError(t, err)
	only(2, 3, 4)
	next, err := sem.Acquire(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, held.Token()+1, next.Token(), "through server 2's counter of the semaphore")
	only(0, 1, 2, 3, 4)
	require.NoError(t, next.Release(context.Background()))
	require.NoError(t, held.Release(context.Background()))
}

func TestAFencingCounterKeyInUseFailsAtOnce(t *testing.T) {
	servers, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	for _, s := range servers {
		require.NoError(t, s.Set(fenceKey("b"), "a lock's value"))
		require.NoError(t, s.Set(fenceKey("{s}:permits"), "a lock's value"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mm := rs.NewMultiMutex([]string{"a", "b"}, WithFencing(true))
	err := mm.LockContext(ctx)
	require.ErrorIs(t, err, ErrFenceKeyInUse)
	assert.NoError(t, ctx.Err(), "it did not wait for its tries")
	_, err = rs.NewSemaphore("s", 2, WithFencing(true)).Acquire(ctx, 1)
	require.ErrorIs(t, err, ErrFenceKeyInUse)
	assert.NoError(t, ctx.Err(), "it did not wait")
	rs.Wait()
	for i, s := range servers {
		assert.ElementsMatch(t, []string{fenceKey("b"), fenceKey("{s}:permits")}, s.Keys(), "server %d: only the keys in use are left", i)
	}
}

// tokenOps records the Token of every successful Done, by Op.
type tokenOps struct {
	BaseObserver
	mu     sync.Mutex
	tokens map[Op]uint64
}

func (o *tokenOps) Done(_ context.Context, e DoneEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.Err == nil {
		o.tokens[e.Op] = e.Token
	}
}

func TestAFencedAcquisitionsTokenIsObserved(t *testing.T) {
	c := newRealCluster(t, 3)
	obs := &tokenOps{tokens: map[Op]uint64{}}
	c.rs.SetObserver(obs)
	lease := acquireRelease(t, c.rs.NewSemaphore("seen", 2, WithFencing(true)), 1)
	mm := lockUnlock(t, c.rs.NewMultiMutex([]string{"p", "q"}, WithFencing(true)))
	obs.mu.Lock()
	defer obs.mu.Unlock()
	assert.Equal(t, map[Op]uint64{OpAcquire: lease, OpRelease: 0, OpMultiLock: mm, OpMultiUnlock: 0}, obs.tokens)
	assert.NotZero(t, lease)
	assert.NotZero(t, mm)
}
