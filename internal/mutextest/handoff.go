package mutextest

import (
	"context"
	"sync"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/observertest"
	"github.com/quorumlock/redsync/redis"
)

// subscribes reports whether the adapter's pools announce releases; a Pool
// without it polls, and the tests of wake-ups skip it.
func subscribes(t *testing.T, c *testCluster) bool {
	t.Helper()
	_, ok := c.pools[0].(redis.Subscriber)
	return ok
}

// lockInBackground starts m.LockContext and returns the channel its error
// arrives on.
func lockInBackground(ctx context.Context, m *redsync.Mutex) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.LockContext(ctx) }()
	return done
}

// An hour between tries: a waiter that gets the lock within the test did
// not poll for it.
var neverRetry = redsync.WithRetryDelay(time.Hour)

func testWaiterWakesWhenTheLockIsReleased(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		if !subscribes(t, c) {
			t.Skip("the pool is not a redis.Subscriber: waiters poll")
		}
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		waiter := c.rs.NewMutex(name, neverRetry)
		done := lockInBackground(ctx, waiter)
		waitForSubscribers(t, c, name)

		select {
		case err := <-done:
			t.Fatalf("Lock returned while the lock was held: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		ok, err := holder.Unlock()
		require.True(t, ok, err)
		require.NoError(t, <-done, "woken by the release, long before the retry delay")
		ok, err = waiter.Unlock()
		require.True(t, ok, err)
		c.assertNothingLeft(t, name)
	})
}

func testWaiterWakesWhenTheKeyExpires(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		if _, ok := c.pools[0].(redis.Subscriber); !ok {
			t.Skip("a Pool that is none of this project's adapters sees only redsync's calls: no PTTL, so its waiters poll")
		}
		// The holder vanishes without Unlock: its key expires.
		holder := c.rs.NewMutex(name, redsync.WithExpiry(300*time.Millisecond))
		c.lock(t, holder)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		waiter := c.rs.NewMutex(name, neverRetry)
		require.NoError(t, waiter.LockContext(ctx), "the refused try told when the key expires")
		// It woke when a quorum of servers had to be free; the others may
		// still have held the old key a moment longer.
		held := 0
		for _, v := range c.valuesAfterWait(t, name) {
			if v == waiter.Value() {
				held++
			}
		}
		assert.GreaterOrEqual(t, held, len(c.servers)/2+1)
		ok, err := waiter.Unlock()
		require.True(t, ok, err)
	})
}

func testWaitersOfOneProcessShareOneConnectionPerServer(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		if !subscribes(t, c) {
			t.Skip("the pool is not a redis.Subscriber: waiters poll")
		}
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const waiters = 6
		dones := make([]<-chan error, waiters)
		mutexes := make([]*redsync.Mutex, waiters)
		for i := range dones {
			mutexes[i] = c.rs.NewMutex(name, neverRetry)
			dones[i] = lockInBackground(ctx, mutexes[i])
		}
		waitForSubscribers(t, c, name)
		time.Sleep(50 * time.Millisecond) // every waiter has joined
		for i, client := range c.inspect {
			n, err := ListenersOf(ctx, client, name)
			require.NoError(t, err)
			assert.EqualValues(t, 1, n, "server %d", i)
		}

		// Each waiter gets its turn as the one before releases.
		ok, err := holder.Unlock()
		require.True(t, ok, err)
		for got := 0; got < waiters; {
			for i, done := range dones {
				if done == nil {
					continue
				}
				select {
				case err := <-done:
					require.NoError(t, err)
					dones[i] = nil
					got++
					ok, err := mutexes[i].Unlock()
					require.True(t, ok, err)
				case <-ctx.Done():
					t.Fatalf("only %d of %d waiters got the lock", got, waiters)
				case <-time.After(time.Millisecond):
				}
			}
		}
		c.assertNothingLeft(t, name)
		// Nobody waits any more: the listeners unsubscribed.
		c.rs.Wait()
		for i, client := range c.inspect {
			n, err := ListenersOf(ctx, client, name)
			require.NoError(t, err)
			assert.EqualValues(t, 0, n, "server %d", i)
		}
	})
}

func testReleaserDoesNotJumpTheQueue(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		if !subscribes(t, c) {
			t.Skip("the pool is not a redis.Subscriber: waiters poll")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		releaser := c.rs.NewMutex(name, neverRetry)
		c.lock(t, releaser)
		waiter := c.rs.NewMutex(name, neverRetry)
		done := lockInBackground(ctx, waiter)
		waitForSubscribers(t, c, name)
		time.Sleep(20 * time.Millisecond)

		// The releaser tries again at once, as a busy loop would.
		ok, err := releaser.Unlock()
		require.True(t, ok, err)
		var taken *redsync.ErrTaken
		assert.ErrorAs(t, releaser.TryLock(), &taken, "the waiter goes first")
		require.NoError(t, <-done)
		ok, err = waiter.Unlock()
		require.True(t, ok, err)
	})
}

func testListenerReconnectsAfterRestart(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 1, func(t *testing.T, c *testCluster, name string) {
		if !subscribes(t, c) {
			t.Skip("the pool is not a redis.Subscriber: waiters poll")
		}
		holder := c.rs.NewMutex(name, redsync.WithExpiry(time.Minute))
		c.lock(t, holder)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		waiter := c.rs.NewMutex(name, neverRetry)
		done := lockInBackground(ctx, waiter)
		waitForSubscribers(t, c, name)

		// Restarted empty, the server forgot the holder's key; the waiter
		// finds out when its listener is back and subscribed again.
		c.servers[0].Restart(t)
		require.NoError(t, <-done)
		ok, err := waiter.Unlock()
		require.True(t, ok, err)
	})
}

func testHandoffOffPollsLikeRedsync(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)
		var mu sync.Mutex
		var delays int
		waiter := c.rs.NewMutex(name, redsync.WithHandoff(false), redsync.WithTries(3),
			redsync.WithRetryDelayFunc(func(int) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				delays++
				return 30 * time.Millisecond
			}))
		done := lockInBackground(context.Background(), waiter)
		time.Sleep(10 * time.Millisecond)
		ok, err := holder.Unlock()
		require.True(t, ok, err)
		require.NoError(t, <-done, "the next poll finds it free")
		mu.Lock()
		assert.Equal(t, 1, delays, "no wake-up, one retry")
		mu.Unlock()
		ok, err = waiter.Unlock()
		require.True(t, ok, err)
		for _, client := range c.inspect {
			n, err := ListenersOf(context.Background(), client, name)
			require.NoError(t, err)
			assert.EqualValues(t, 0, n)
		}
	})
}

// waitForSubscribers waits until every server has a listener for name.
func waitForSubscribers(t *testing.T, c *testCluster, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, client := range c.inspect {
			n, err := ListenersOf(context.Background(), client, name)
			if err != nil || n == 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 2*time.Millisecond, "listeners never subscribed")
}

// ListenersOf returns how many connections the server of client counts as
// listening for releases of name: on its classic channel (PUBSUB NUMSUB)
// and on its sharded one (PUBSUB SHARDNUMSUB), where a listener subscribes
// when its adapter and server can.
func ListenersOf(ctx context.Context, client *goredislib.Client, name string) (int64, error) {
	classic := handoff.ReleaseChannel(name)
	n, err := client.PubSubNumSub(ctx, classic).Result()
	if err != nil {
		return 0, err
	}
	sharded := handoff.ShardedReleaseChannel(name)
	if sharded == "" {
		return n[classic], nil
	}
	s, err := client.PubSubShardNumSub(ctx, sharded).Result()
	if err != nil {
		return 0, err
	}
	return n[classic] + s[sharded], nil
}

// valuesAfterWait is values once every request in flight is done.
func (c *testCluster) valuesAfterWait(t *testing.T, name string) []string {
	t.Helper()
	c.rs.Wait()
	return c.values(t, name)
}

// testWaitReturnsWhileAListenersServerIsStalled: once nobody waits, a
// listener unsubscribes and stops when its server confirms. A stalled
// server confirms nothing; the listener gives its connection up after a
// while, so that Redsync.Wait (at shutdown, say) does not wait for the
// server to come back.
func testWaitReturnsWhileAListenersServerIsStalled(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		if !subscribes(t, c) {
			t.Skip("the pool is not a redis.Subscriber: waiters poll")
		}
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		attempts := &observertest.Recorder{}
		done := lockInBackground(ctx, c.rs.NewMutex(name, neverRetry, redsync.WithObserver(attempts)))
		waitForSubscribers(t, c, name)
		// The listeners' confirmations wake the waiter for one more
		// attempt (a release may have gone unheard before them): it is
		// over, every server answered, before server 2 stalls.
		require.Eventually(t, func() bool { return len(attempts.Attempts()) >= 2 }, 5*time.Second, time.Millisecond)

		// The waiter gives up while server 2 is stalled: its listener's
		// unsubscribe gets no answer, and the release of its place in
		// server 2's fleet queue neither: that release gives up after the
		// fleet lease and the per-server deadline (2.4 s), or the
		// client's read timeout where the client does not heed the
		// context's deadline (go-redis: 3 s), not after the expiry (8 s).
		c.servers[2].Pause(t)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		waited := make(chan struct{})
		go func() {
			c.rs.Wait()
			close(waited)
		}()
		select {
		case <-waited:
		case <-time.After(6500 * time.Millisecond):
			c.servers[2].Resume(t) // lets Wait return, and the test end
			<-waited
			t.Fatal("Wait waited for the stalled server")
		}
		c.servers[2].Resume(t)
		ok, err := holder.Unlock()
		require.True(t, ok, err)
		c.assertNothingLeft(t, name)
	})
}
