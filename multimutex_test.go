package redsync

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	redigolib "github.com/gomodule/redigo/redis"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	"github.com/quorumlock/redsync/redis/redigo"
)

// forEachSize runs fn on 1, 3 and 5 real servers, through go-redis, and
// on 3 through redigo.
func forEachSize(t *testing.T, fn func(t *testing.T, c *realCluster)) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%dservers", n), func(t *testing.T) { fn(t, newRealCluster(t, n)) })
	}
	t.Run("3servers/redigo", func(t *testing.T) { fn(t, newRedigoCluster(t, 3)) })
}

// newRedigoCluster is newRealCluster with redigo pools.
func newRedigoCluster(t *testing.T, n int) *realCluster {
	t.Helper()
	c := &realCluster{servers: redistest.Start(t, n)}
	var ps []redis.Pool
	for _, s := range c.servers {
		addr := s.Addr()
		pool := &redigolib.Pool{MaxIdle: 16, DialContext: func(ctx context.Context) (redigolib.Conn, error) {
			return redigolib.DialContext(ctx, "tcp", addr)
		}}
		t.Cleanup(func() { _ = pool.Close() })
		ps = append(ps, redigo.NewPool(pool))
		c.inspect = append(c.inspect, s.Client(t))
	}
	c.rs = New(ps...)
	t.Cleanup(c.rs.Wait)
	return c
}

// repeated is n copies of s.
func repeated(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestMultiMutexLocksEveryNameOnEveryServerAndUnlocksThemAll(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		names := []string{"acct:1", "acct:2", "acct:3"}
		mm := c.rs.NewMultiMutex(names)
		require.NoError(t, mm.Lock())
		assert.True(t, time.Until(mm.Until()) > 7*time.Second)
		for _, name := range names {
			assert.Equal(t, repeated(mm.Value(), len(c.servers)), c.values(t, name), name)
		}
		valid, err := mm.Valid()
		assert.True(t, valid, err)
		ok, err := mm.Extend()
		assert.True(t, ok, err)
		ok, err = mm.Unlock()
		require.True(t, ok, err)
		for _, name := range names {
			assert.Equal(t, repeated("", len(c.servers)), c.values(t, name), name)
		}
		_, err = mm.Unlock()
		assert.ErrorIs(t, err, ErrNotHeld)
		require.NoError(t, mm.Lock(), "locks again after Unlock")
		ok, err = mm.Unlock()
		require.True(t, ok, err)
	})
}

func TestMultiMutexesListingNamesInOppositeOrdersBothFinish(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		var inside atomic.Int32
		var wg sync.WaitGroup
		for _, names := range [][]string{{"a", "b"}, {"b", "a"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 15; i++ {
					mm := c.rs.NewMultiMutex(names, WithRetryDelay(5*time.Millisecond), WithTries(1000))
					if !assert.NoError(t, mm.Lock()) {
						return
					}
					assert.Equal(t, int32(1), inside.Add(1), "two holders of a and b at once")
					time.Sleep(time.Millisecond)
					inside.Add(-1)
					ok, err := mm.Unlock()
					assert.True(t, ok, err)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, repeated("", len(c.servers)), c.values(t, "a"))
		assert.Equal(t, repeated("", len(c.servers)), c.values(t, "b"))
	})
}

func TestAMutexAndAMultiMutexOnOneNameExcludeEachOther(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		m := c.rs.NewMutex("y")
		require.NoError(t, m.Lock())
		mm := c.rs.NewMultiMutex([]string{"x", "y", "z"})
		err := mm.TryLock()
		require.ErrorIs(t, err, ErrFailed)
		var taken *ErrTaken
		assert.ErrorAs(t, err, &taken)
		for _, name := range []string{"x", "z"} {
			assert.Equal(t, repeated("", len(c.servers)), c.values(t, name), "a refused attempt set %s", name)
		}
		ok, err := m.Unlock()
		require.True(t, ok, err)

		require.NoError(t, mm.TryLock())
		other := c.rs.NewMutex("z")
		assert.Error(t, other.TryLock(), "a Mutex got a name of a held MultiMutex")
		ok, err = mm.Unlock()
		require.True(t, ok, err)
		require.NoError(t, other.TryLock())
		ok, err = other.Unlock()
		require.True(t, ok, err)
	})
}

func TestACancelledMultiMutexLockLeavesNothing(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		m := c.rs.NewMutex("held")
		require.NoError(t, m.Lock())
		mm := c.rs.NewMultiMutex([]string{"free", "held"}, WithRetryDelay(10*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := mm.LockContext(ctx)
		assert.ErrorIs(t, err, ErrFailed)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, repeated("", len(c.servers)), c.values(t, "free"))
		assert.Equal(t, repeated(m.Value(), len(c.servers)), c.values(t, "held"))
		ok, err := m.Unlock()
		require.True(t, ok, err)
	})
}

func TestMultiMutexKeepAliveHoldsForManyExpiries(t *testing.T) {
	c := newRealCluster(t, 3)
	mm := c.rs.NewMultiMutex([]string{"k1", "k2"}, WithExpiry(300*time.Millisecond), WithTimeoutFactor(0.3))
	err := mm.RunLocked(context.Background(), func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(1200 * time.Millisecond):
		}
		valid, err := mm.Valid()
		if !valid {
			return fmt.Errorf("not valid after 4 expiries: %w", err)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, repeated("", 3), c.values(t, "k1"))
}

func TestMultiMutexReportsBadArguments(t *testing.T) {
	client := goredislib.NewClient(&goredislib.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	rs := New(goredis.NewPool(client))
	for _, tt := range []struct {
		name  string
		names []string
		opts  []Option
		arg   string
	}{
		{"NoNames", nil, nil, "names"},
		{"EmptyName", []string{"a", ""}, nil, "names"},
		{"NameTwice", []string{"a", "b", "a"}, nil, "names"},
		{"BadExpiry", []string{"a"}, []Option{WithExpiry(0)}, "WithExpiry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := rs.NewMultiMutex(tt.names, tt.opts...).Lock()
			var argErr *ArgumentError
			require.ErrorAs(t, err, &argErr)
			assert.Equal(t, tt.arg, argErr.Arg)
		})
	}
	mm := rs.NewMultiMutex([]string{"a"})
	//lint:ignore SA1012 a nil context is what is tested
	assert.ErrorIs(t, mm.LockContext(nil), ErrInvalidArgument) //nolint:staticcheck
	assert.ErrorIs(t, mm.RunLocked(context.Background(), nil), ErrInvalidArgument)
}

func TestMultiMutexOnARedisClusterIsAllOrNothingAcrossSlots(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := goredislib.NewClusterClient(&goredislib.ClusterOptions{
		Addrs: cluster.Addrs(), MaxRedirects: 3, ContextTimeoutEnabled: true, DisableIdentity: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	rs := New(goredis.NewPool(client))
	t.Cleanup(rs.Wait)
	ctx := context.Background()
	names := []string{"acct:17", "acct:42", "acct:99", "{acct}:1", "{acct}:2"}

	mm := rs.NewMultiMutex(names)
	require.NoError(t, mm.Lock())
	for _, name := range names {
		v, err := client.Get(ctx, name).Result()
		require.NoError(t, err)
		assert.Equal(t, mm.Value(), v, name)
	}
	ok, err := mm.Unlock()
	require.True(t, ok, err)

	m := rs.NewMutex("acct:99")
	require.NoError(t, m.Lock())
	require.ErrorIs(t, rs.NewMultiMutex(names).TryLock(), ErrFailed)
	rs.Wait()
	for _, name := range names {
		if name == "acct:99" {
			continue
		}
		_, err := client.Get(ctx, name).Result()
		assert.ErrorIs(t, err, goredislib.Nil, "%s was left set by a refused attempt", name)
	}
	ok, err = m.Unlock()
	require.True(t, ok, err)
}

// TestAReleaseOfAnyNameWakesAWaitingMultiMutex: the waiter's retry delay
// (5 s) is longer than its context (4 s), so only a wake-up explains a
// Lock that returns nil: by a release in this process, by one in another
// (a Redsync of its own on the same servers: the announcements), and by
// another MultiMutex's Unlock.
func TestAReleaseOfAnyNameWakesAWaitingMultiMutex(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		other := New(c.rs.pools...)
		t.Cleanup(other.Wait)
		for _, tc := range []struct {
			name   string
			holder func(name string) func() error // locks name, returns the unlock
		}{
			{"MutexHere", func(name string) func() error { return lockedMutex(t, c.rs, name) }},
			{"MutexElsewhere", func(name string) func() error { return lockedMutex(t, other, name) }},
			{"MultiMutexElsewhere", func(name string) func() error {
				mm := other.NewMultiMutex([]string{name, "unrelated"})
				require.NoError(t, mm.Lock())
				return func() error { _, err := mm.Unlock(); return err }
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				unlock := tc.holder("b")
				mm := c.rs.NewMultiMutex([]string{"a", "b", "c"}, WithRetryDelay(5*time.Second))
				got := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
					defer cancel()
					got <- mm.LockContext(ctx)
				}()
				require.Eventually(t, func() bool {
					s := c.rs.handoff.state("b")
					return s.Watching == 1 && s.Confirmed == len(c.servers)
				}, 3*time.Second, time.Millisecond, "the MultiMutex never waited")
				require.NoError(t, unlock())
				require.NoError(t, <-got, "not woken by the release of b")
				ok, err := mm.Unlock()
				require.True(t, ok, err)
				assert.Equal(t, handoff.NameState{}, c.rs.handoff.state("b"), "it stopped watching")
			})
		}
	})
}

// lockedMutex locks a Mutex on name through rs and returns its unlock.
func lockedMutex(t *testing.T, rs *Redsync, name string) func() error {
	t.Helper()
	m := rs.NewMutex(name)
	require.NoError(t, m.Lock())
	return func() error {
		_, err := m.Unlock()
		return err
	}
}

// TestAWaitingMultiMutexHoldsNoMutexWaiterBack: the MultiMutex watches b
// without a turn among b's waiters; a Mutex of this process waiting for b
// gets it when b is released, while the MultiMutex still waits for c.
func TestAWaitingMultiMutexHoldsNoMutexWaiterBack(t *testing.T) {
	c := newRealCluster(t, 3)
	unlockB := lockedMutex(t, c.rs, "b")
	unlockC := lockedMutex(t, c.rs, "c")
	mm := c.rs.NewMultiMutex([]string{"b", "c"}, WithRetryDelay(5*time.Second))
	mmDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mmDone <- mm.LockContext(ctx)
	}()
	require.Eventually(t, func() bool { return c.rs.handoff.state("b").Watching == 1 }, 3*time.Second, time.Millisecond)
	waiter := c.rs.NewMutex("b", WithRetryDelay(5*time.Second))
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		got <- waiter.LockContext(ctx)
	}()
	require.Eventually(t, func() bool { return c.rs.handoff.state("b").HeadWaiting }, 3*time.Second, time.Millisecond)
	require.NoError(t, unlockB())
	require.NoError(t, <-got, "the Mutex waiter was held back")
	require.NoError(t, unlockC())
	ok, err := waiter.Unlock()
	require.True(t, ok, err)
	require.NoError(t, <-mmDone)
	ok, err = mm.Unlock()
	require.True(t, ok, err)
}
