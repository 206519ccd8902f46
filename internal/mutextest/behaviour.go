package mutextest

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

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
)

// occupancy counts the goroutines inside a critical section and keeps the
// most there were at once.
type occupancy struct {
	inside, most int32 // atomic
}

func (o *occupancy) enter() {
	now := atomic.AddInt32(&o.inside, 1)
	for {
		most := atomic.LoadInt32(&o.most)
		if now <= most || atomic.CompareAndSwapInt32(&o.most, most, now) {
			return
		}
	}
}

func (o *occupancy) leave() {
	atomic.AddInt32(&o.inside, -1)
}

// testCluster is a redsync.Redsync over real servers, with a client per server to
// look at what the servers hold.
type testCluster struct {
	servers []*redistest.Server
	inspect []*goredislib.Client
	pools   []redis.Pool
	rs      *redsync.Redsync
}

func newTestCluster(t *testing.T, servers []*redistest.Server, newPool func(*testing.T, string) redis.Pool) *testCluster {
	t.Helper()
	c := &testCluster{servers: servers}
	pools := make([]redis.Pool, len(servers))
	for i, s := range servers {
		pools[i] = newPool(t, s.Addr())
		c.inspect = append(c.inspect, s.Client(t))
	}
	c.pools = pools
	c.rs = redsync.New(pools...)
	// Late replies are handled before the clients close.
	t.Cleanup(c.rs.Wait)
	return c
}

// lock locks m and waits until every server answered: Lock itself returns
// as soon as a quorum did.
func (c *testCluster) lock(t *testing.T, m *redsync.Mutex) {
	t.Helper()
	require.NoError(t, m.Lock())
	c.rs.Wait()
}

// values returns what every server holds under name ("" when missing).
func (c *testCluster) values(t *testing.T, name string) []string {
	t.Helper()
	return Values(t, c.inspect, name)
}

// Values returns what the server of each client holds under name (""
// when missing).
func Values(t *testing.T, clients []*goredislib.Client, name string) []string {
	t.Helper()
	out := make([]string, len(clients))
	for i, client := range clients {
		v, err := client.Get(context.Background(), name).Result()
		if err != goredislib.Nil {
			require.NoError(t, err, "server %d", i)
		}
		out[i] = v
	}
	return out
}

// assertNothingLeft waits for late replies and checks that no server holds name.
//
// A release announced to a waiter leaves a placeholder that expires within
// 50 ms (see WithHandoff); that one may still be there, nothing else.
func (c *testCluster) assertNothingLeft(t *testing.T, name string) {
	t.Helper()
	c.rs.Wait()
	empty := make([]string, len(c.servers))
	for i, v := range c.values(t, name) {
		if v != "" && v != handoffMarker {
			assert.Equal(t, empty, c.values(t, name), "keys left on the servers (server %d)", i)
			return
		}
	}
	assert.Eventually(t, func() bool {
		for _, v := range c.values(t, name) {
			if v != "" {
				return false
			}
		}
		return true
	}, time.Second, 5*time.Millisecond, "the hand-off placeholder outlives its 50 ms")
}

// handoffMarker is the placeholder a release leaves for waiters.
const handoffMarker = "redsync:handoff"

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// forEachSetup runs fn on every adapter over 1, 3 and 5 real servers.
func forEachSetup(t *testing.T, adapters []Adapter, fn func(t *testing.T, c *testCluster, name string)) {
	servers := redistest.Start(t, 5)
	for _, a := range adapters {
		for _, n := range []int{1, 3, 5} {
			a, n := a, n
			t.Run(fmt.Sprintf("%s/%d", a.Name, n), func(t *testing.T) {
				c := newTestCluster(t, servers[:n], a.NewPool)
				fn(t, c, t.Name())
			})
		}
	}
}

// forEachAdapter runs fn on every adapter over n fresh real servers, for
// tests that pause or kill servers.
func forEachAdapter(t *testing.T, adapters []Adapter, n int, fn func(t *testing.T, c *testCluster, name string)) {
	for _, a := range adapters {
		t.Run(a.Name, func(t *testing.T) {
			c := newTestCluster(t, redistest.Start(t, n), a.NewPool)
			fn(t, c, t.Name())
		})
	}
}

func testLockStoresRedsyncKeyAndValueOnEveryServer(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(5*time.Second))
		before := time.Now()
		c.lock(t, m)
		assert.Len(t, m.Value(), 24)
		// Until is the try's start plus the expiry less the drift (1%).
		validity := 5*time.Second - 50*time.Millisecond
		assert.False(t, m.Until().Before(before.Add(validity)), "Until %v starts before Lock was called", m.Until())
		assert.False(t, m.Until().After(time.Now().Add(validity)), "Until %v is too late", m.Until())
		assert.Equal(t, repeat(m.Value(), len(c.servers)), c.values(t, name))
		for _, client := range c.inspect {
			ttl, err := client.PTTL(context.Background(), name).Result()
			require.NoError(t, err)
			assert.InDelta(t, float64(5*time.Second), float64(ttl), float64(time.Second))
		}

		ok, err := m.Unlock()
		require.NoError(t, err)
		assert.True(t, ok)
		c.assertNothingLeft(t, name)
	})
}

func testMutualExclusionAmongManyGoroutines(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		const workers, rounds = 6, 4
		var (
			held    occupancy
			counter int // guarded by the distributed lock only
			wg      sync.WaitGroup
		)
		errs := make(chan error, workers*rounds)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					m := c.rs.NewMutex(name, redsync.WithTries(1000), redsync.WithRetryDelayFunc(func(int) time.Duration {
						return time.Millisecond
					}))
					if err := m.Lock(); err != nil {
						errs <- err
						return
					}
					held.enter()
					v := counter
					time.Sleep(200 * time.Microsecond)
					counter = v + 1
					held.leave()
					if ok, err := m.Unlock(); !ok {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		assert.EqualValues(t, 1, held.most, "two holders at once")
		assert.Equal(t, workers*rounds, counter)
		c.assertNothingLeft(t, name)
	})
}

func testTryLockOnHeldLockReportsTakenOnEveryNode(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)
		defer holder.Unlock()

		err := c.rs.NewMutex(name).TryLock()
		var taken *redsync.ErrTaken
		require.ErrorAs(t, err, &taken)
		assert.Len(t, taken.Nodes, len(c.servers))
		assert.NotErrorIs(t, err, redsync.ErrFailed, "redsync returns the try's error, not redsync.ErrFailed")
		c.rs.Wait()
		assert.Equal(t, repeat(holder.Value(), len(c.servers)), c.values(t, name))
	})
}

func testLockGivesUpAfterItsTries(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		holder := c.rs.NewMutex(name)
		require.NoError(t, holder.Lock())
		defer holder.Unlock()

		var delays []int
		m := c.rs.NewMutex(name, redsync.WithTries(3), redsync.WithRetryDelayFunc(func(tries int) time.Duration {
			delays = append(delays, tries)
			return time.Millisecond
		}))
		var taken *redsync.ErrTaken
		require.ErrorAs(t, m.Lock(), &taken)
		assert.Equal(t, []int{1, 2}, delays, "a delay before each retry")
		assert.Empty(t, m.Value())
	})
}

func testForeignValuesOnSomeServers(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		ctx := context.Background()
		// A minority holds somebody else's value: the lock is still ours.
		for _, i := range []int{1, 3} {
			require.NoError(t, c.inspect[i].Set(ctx, name, "foreign", 0).Err())
		}
		m := c.rs.NewMutex(name)
		c.lock(t, m)
		assert.Equal(t, []string{m.Value(), "foreign", m.Value(), "foreign", m.Value()}, c.values(t, name))
		ok, err := m.Unlock()
		assert.True(t, ok)
		assert.NoError(t, err)
		assert.Equal(t, []string{"", "foreign", "", "foreign", ""}, c.values(t, name))

		// A majority holds it: taken, and nothing of ours stays behind.
		require.NoError(t, c.inspect[4].Set(ctx, name, "foreign", 0).Err())
		err = c.rs.NewMutex(name).TryLock()
		var taken *redsync.ErrTaken
		require.ErrorAs(t, err, &taken)
		assert.ElementsMatch(t, []int{1, 3, 4}, taken.Nodes)
		c.rs.Wait()
		assert.Equal(t, []string{"", "foreign", "", "foreign", "foreign"}, c.values(t, name))
	})
}

func testUnlockAfterExpiryReportsExpired(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(100*time.Millisecond))
		c.lock(t, m)
		require.Eventually(t, func() bool {
			for _, v := range c.values(t, name) {
				if v != "" {
					return false
				}
			}
			return true
		}, 2*time.Second, 10*time.Millisecond, "every server's key expires")
		ok, err := m.Unlock()
		assert.False(t, ok)
		assert.ErrorIs(t, err, redsync.ErrLockAlreadyExpired)

		// Another redsync.Mutex takes it at once.
		other := c.rs.NewMutex(name, redsync.WithTries(1))
		require.NoError(t, other.Lock())
		_, _ = other.Unlock()
	})
}

func testExtendResetsTheExpiry(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(2*time.Second))
		require.NoError(t, m.Lock())
		first := m.Until()
		time.Sleep(500 * time.Millisecond) // the keys have 1.5 s left
		ok, err := m.Extend()
		require.NoError(t, err)
		require.True(t, ok)
		assert.True(t, m.Until().After(first), "Until moves forward")
		c.rs.Wait() // Extend returns once a quorum answered
		for _, client := range c.inspect {
			ttl, err := client.PTTL(context.Background(), name).Result()
			require.NoError(t, err)
			assert.Greater(t, ttl, 1600*time.Millisecond, "reset to the full 2 s")
		}
		ok, err = m.Unlock()
		require.True(t, ok, err)

		// Once the key is gone, Extend fails.
		ok, err = m.Extend()
		assert.False(t, ok)
		var taken *redsync.ErrTaken
		assert.ErrorAs(t, err, &taken)
	})
}

func testSetNXOnExtendRestoresKeysLostByServers(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		ctx := context.Background()
		plain := c.rs.NewMutex(name+":plain", redsync.WithExpiry(time.Second))
		setNX := c.rs.NewMutex(name+":setnx", redsync.WithExpiry(time.Second), redsync.WithSetNXOnExtend())
		for _, m := range []*redsync.Mutex{plain, setNX} {
			c.lock(t, m)
			// As after a restart without persistence.
			require.NoError(t, c.inspect[2].Del(ctx, m.Name()).Err())
			ok, err := m.Extend()
			require.True(t, ok, err)
		}
		c.rs.Wait() // Extend returns once a quorum answered
		assert.Equal(t, []string{plain.Value(), plain.Value(), ""}, c.values(t, plain.Name()))
		assert.Equal(t, repeat(setNX.Value(), 3), c.values(t, setNX.Name()))

		// A server holding another value is left alone.
		require.NoError(t, c.inspect[1].Set(ctx, setNX.Name(), "foreign", 0).Err())
		ok, err := setNX.Extend()
		require.True(t, ok, err)
		c.rs.Wait()
		assert.Equal(t, []string{setNX.Value(), "foreign", setNX.Value()}, c.values(t, setNX.Name()))
		_, _ = plain.Unlock()
		_, _ = setNX.Unlock()
	})
}

func testScriptsSurviveScriptFlush(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name)
		require.NoError(t, m.Lock())
		for _, client := range c.inspect {
			require.NoError(t, client.ScriptFlush(context.Background()).Err())
		}
		ok, err := m.Extend()
		require.True(t, ok, err)
		for _, client := range c.inspect {
			require.NoError(t, client.ScriptFlush(context.Background()).Err())
		}
		ok, err = m.Unlock()
		require.True(t, ok, err)
		c.assertNothingLeft(t, name)
	})
}

func testValidFollowsTheKeys(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name)
		//lint:ignore SA1019 Valid is redsync API, tested as such
		ok, err := m.Valid()
		assert.False(t, ok)
		// As redsync: without a value every server counts as holding
		// another one.
		var taken *redsync.ErrTaken
		if assert.ErrorAs(t, err, &taken) {
			assert.Len(t, taken.Nodes, len(c.servers))
		}
		c.lock(t, m)
		//lint:ignore SA1019 Valid is redsync API, tested as such
		ok, err = m.Valid()
		assert.True(t, ok)
		assert.NoError(t, err)
		_, _ = m.Unlock()
		//lint:ignore SA1019 Valid is redsync API, tested as such
		ok, _ = m.Valid()
		assert.False(t, ok)
	})
}

func testWithValueTransfersOwnership(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		owner := c.rs.NewMutex(name)
		c.lock(t, owner)
		heir := c.rs.NewMutex(name, redsync.WithValue(owner.Value()))
		assert.Equal(t, owner.Value(), heir.Value())
		ok, err := heir.Extend()
		require.True(t, ok, err)
		ok, err = heir.Unlock()
		require.True(t, ok, err)
		c.assertNothingLeft(t, name)
	})
}

func testGenValueFuncIsCalledPerTry(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		for _, handoff := range []bool{false, true} {
			holder := c.rs.NewMutex(name)
			c.lock(t, holder)
			var calls int
			m := c.rs.NewMutex(name, redsync.WithTries(3), redsync.WithRetryDelay(time.Millisecond),
				redsync.WithHandoff(handoff), redsync.WithGenValueFunc(func() (string, error) {
					calls++
					return fmt.Sprintf("value-%d", calls), nil
				}))
			assert.Error(t, m.Lock())
			if handoff {
				// A Lock in the fleet queue keeps its value (an adapter
				// that cannot listen polls, with one value per try).
				assert.GreaterOrEqual(t, calls, 1)
			} else {
				assert.Equal(t, 3, calls, "one value per try")
			}
			_, _ = holder.Unlock()
			c.assertNothingLeft(t, name)

			c.lock(t, m)
			last := fmt.Sprintf("value-%d", calls)
			assert.Equal(t, last, m.Value())
			assert.Equal(t, repeat(last, len(c.servers)), c.values(t, name))
			_, _ = m.Unlock()
		}

		boom := errors.New("no entropy")
		failing := c.rs.NewMutex(name, redsync.WithGenValueFunc(func() (string, error) { return "", boom }))
		assert.ErrorIs(t, failing.Lock(), boom)
		c.assertNothingLeft(t, name)
	})
}

func testShuffleAndFailFastKeepTheResults(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		for _, opts := range [][]redsync.Option{
			{redsync.WithShufflePools(true)},
			{redsync.WithFailFast(true)},
			{redsync.WithShufflePools(true), redsync.WithFailFast(true)},
		} {
			m := c.rs.NewMutex(name, opts...)
			require.NoError(t, m.Lock())
			var taken *redsync.ErrTaken
			require.ErrorAs(t, c.rs.NewMutex(name, opts...).TryLock(), &taken)
			ok, err := m.Unlock()
			require.True(t, ok, err)
			c.assertNothingLeft(t, name)
		}
	})
}

func testLockContextCancelledReturnsPromptlyAndLeavesNothing(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)

		ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
		defer cancel()
		m := c.rs.NewMutex(name, redsync.WithRetryDelay(time.Hour))
		err := m.LockContext(ctx)
		assert.ErrorIs(t, err, redsync.ErrFailed)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var taken *redsync.ErrTaken
		assert.ErrorAs(t, err, &taken, "the last try's error is kept")
		c.rs.Wait()
		assert.Equal(t, repeat(holder.Value(), len(c.servers)), c.values(t, name))

		_, _ = holder.Unlock()
		done, stop := context.WithCancel(context.Background())
		stop()
		err = c.rs.NewMutex(name).LockContext(done)
		assert.ErrorIs(t, err, redsync.ErrFailed)
		assert.ErrorIs(t, err, context.Canceled)
		c.assertNothingLeft(t, name)
	})
}

func testQuorumSurvivesKilledMinority(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		c.servers[0].Kill(t)
		c.servers[3].Kill(t)
		// A short expiry bounds how long releases to the dead servers retry.
		m := c.rs.NewMutex(name, redsync.WithExpiry(time.Second))
		require.NoError(t, m.Lock())
		ok, err := m.Extend()
		require.True(t, ok, err)
		ok, err = m.Unlock()
		require.True(t, ok, err)

		c.servers[4].Kill(t)
		err = c.rs.NewMutex(name, redsync.WithExpiry(time.Second)).TryLock()
		var redisErr *redsync.RedisError
		require.ErrorAs(t, err, &redisErr)
		assert.Contains(t, []int{0, 3, 4}, redisErr.Node)
		c.rs.Wait()
		assert.Equal(t, []string{"", ""}, []string{c.values1(t, 1, name), c.values1(t, 2, name)})
	})
}

// values1 returns what server i holds under name.
func (c *testCluster) values1(t *testing.T, i int, name string) string {
	t.Helper()
	v, err := c.inspect[i].Get(context.Background(), name).Result()
	if err != goredislib.Nil {
		require.NoError(t, err)
	}
	return v
}

func testPausedMinorityCostsNothing(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		c.servers[1].Pause(t)
		c.servers[2].Pause(t)
		// The per-server deadline is 5 s: returning well before it shows
		// the round did not wait for the paused servers.
		m := c.rs.NewMutex(name, redsync.WithExpiry(10*time.Second), redsync.WithTimeoutFactor(0.5))
		start := time.Now()
		require.NoError(t, m.Lock())
		ok, err := m.Extend()
		require.True(t, ok, err)
		ok, err = m.Unlock()
		require.True(t, ok, err)
		assert.Less(t, time.Since(start), 2*time.Second)

		// The paused servers run the SET when they resume, after Unlock:
		// the library releases it.
		c.servers[1].Resume(t)
		c.servers[2].Resume(t)
		c.assertNothingLeft(t, name)
	})
}

func testPausedMajorityFailsAndLeavesNothing(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		for _, i := range []int{0, 2, 4} {
			c.servers[i].Pause(t)
		}
		m := c.rs.NewMutex(name, redsync.WithExpiry(2*time.Second), redsync.WithTimeoutFactor(0.1))
		err := m.TryLock()
		var redisErr *redsync.RedisError
		require.ErrorAs(t, err, &redisErr)
		assert.ErrorIs(t, err, context.DeadlineExceeded)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = c.rs.NewMutex(name).LockContext(ctx)
		assert.ErrorIs(t, err, redsync.ErrFailed)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), time.Second, "returns at the cancel, not at the 400 ms deadline")

		for _, i := range []int{0, 2, 4} {
			c.servers[i].Resume(t)
		}
		c.assertNothingLeft(t, name)
	})
}

func testUntilAndValueMayBeReadWhileAnotherGoroutineExtends(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(2*time.Second))
		require.NoError(t, m.Lock())
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = m.Until()
					_ = m.Value()
					_ = m.Name()
				}
			}
		}()
		for i := 0; i < 20; i++ {
			ok, err := m.Extend()
			require.True(t, ok, err)
		}
		close(stop)
		wg.Wait()
		ok, err := m.Unlock()
		require.True(t, ok, err)
	})
}
