package mutextest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
)

// These tests pause servers with SIGSTOP: a paused server accepts
// connections and reads nothing, like a hung or partitioned node. The
// clients keep their default options (go-redis: 3 s read timeout, no
// context deadlines on sockets), as most services run them.

func testOneStalledServerOfFiveCostsNothing(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		c.servers[2].Pause(t)
		// A name per Lock: Unlock returns at quorum, so a Lock of the same
		// name right after it may be refused by a server whose release is
		// still on its way; with two such refusals (seen on a loaded
		// machine) the try can only succeed with the stalled server, and
		// waits for its deadline. That is Redlock, not what this test is
		// about.
		names := make([]string, 20)
		for i := range names {
			names[i] = fmt.Sprintf("%s/%d", name, i)
			m := c.rs.NewMutex(names[i]) // default options: 400 ms per-server deadline
			start := time.Now()
			require.NoError(t, m.Lock())
			ok, err := m.Unlock()
			require.True(t, ok, err)
			// Far below the deadline: nothing waited for the stalled server.
			require.Less(t, time.Since(start), 300*time.Millisecond)
		}
		c.servers[2].Resume(t)
		for _, n := range names {
			c.assertNothingLeft(t, n)
		}
	})
}

func testCancelWithReachableQuorumAcquiresAtOnce(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		c.servers[0].Pause(t)
		c.servers[4].Pause(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		m := c.rs.NewMutex(name)
		require.NoError(t, m.LockContext(ctx), "the healthy quorum answers before the cancel")
		assert.NoError(t, ctx.Err())
		ok, err := m.UnlockContext(ctx)
		require.True(t, ok, err)
		c.servers[0].Resume(t)
		c.servers[4].Resume(t)
		c.assertNothingLeft(t, name)
	})
}

func testUnlockAndExtendAreBoundedByTheDeadline(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(2*time.Second), redsync.WithTimeoutFactor(0.1))
		c.lock(t, m)
		for _, i := range []int{1, 2, 3} {
			c.servers[i].Pause(t)
		}
		// 200 ms per-server deadline; the client's own timeout is 3 s.
		start := time.Now()
		ok, err := m.Extend()
		assert.False(t, ok)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		ok, err = m.Unlock()
		assert.False(t, ok)
		var redisErr *redsync.RedisError
		assert.ErrorAs(t, err, &redisErr)
		assert.Less(t, time.Since(start), 2*time.Second)

		// The releases sent to the paused servers run when they resume.
		for _, i := range []int{1, 2, 3} {
			c.servers[i].Resume(t)
		}
		c.assertNothingLeft(t, name)
	})
}

func testFailFastLeavesNoOrphans(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		for i := 0; i < 200; i++ {
			m := c.rs.NewMutex(name, redsync.WithFailFast(true))
			require.NoError(t, m.Lock())
			ok, err := m.Unlock()
			require.True(t, ok, err)
		}
		c.assertNothingLeft(t, name)
	})
}

func testLateAcquireAfterCancelIsReleased(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		stalled := []int{0, 1, 3}
		for _, i := range stalled {
			c.servers[i].Pause(t)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		err := c.rs.NewMutex(name).LockContext(ctx)
		assert.ErrorIs(t, err, redsync.ErrFailed)
		assert.ErrorIs(t, err, context.Canceled)
		// The servers that answer are clean when LockContext returns.
		for _, i := range []int{2, 4} {
			assert.Equal(t, "", c.values1(t, i, name), "server %d right after the cancel", i)
		}

		// The stalled servers run the SETs they queued when they resume;
		// the library releases them.
		for _, i := range stalled {
			c.servers[i].Resume(t)
		}
		c.assertNothingLeft(t, name)
	})
}

func testFailFastOnlyChangesHowSoonAFailureReturns(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		// Two names set up alike: a quorum of servers holds another value.
		fastName, slowName := name+":fast", name+":slow"
		for _, n := range []string{fastName, slowName} {
			for _, i := range []int{0, 1, 2} {
				require.NoError(t, c.inspect[i].Set(context.Background(), n, "foreign", 0).Err())
			}
		}
		c.servers[3].Pause(t)
		defer c.servers[3].Resume(t)
		// A 1 s per-server deadline; a quorum refuses at once.
		opts := []redsync.Option{redsync.WithExpiry(10 * time.Second), redsync.WithTimeoutFactor(0.1), redsync.WithTries(1)}

		start := time.Now()
		err := c.rs.NewMutex(fastName, append(opts, redsync.WithFailFast(true))...).Lock()
		fast := time.Since(start)
		var taken *redsync.ErrTaken
		require.ErrorAs(t, err, &taken)
		assert.ElementsMatch(t, []int{0, 1, 2}, taken.Nodes)

		start = time.Now()
		err = c.rs.NewMutex(slowName, opts...).Lock()
		waited := time.Since(start)
		require.ErrorAs(t, err, &taken, "the same result")
		assert.ElementsMatch(t, []int{0, 1, 2}, taken.Nodes)

		assert.Less(t, fast, 500*time.Millisecond, "fail-fast returns when a quorum refused")
		assert.GreaterOrEqual(t, waited, time.Second, "without it, the paused server gets its deadline")
		c.servers[3].Resume(t)
		c.rs.Wait()
		for _, n := range []string{fastName, slowName} {
			for _, i := range []int{0, 1, 2} {
				require.NoError(t, c.inspect[i].Del(context.Background(), n).Err())
			}
			c.assertNothingLeft(t, n)
		}
	})
}
