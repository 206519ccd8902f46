// Package primtest is the behaviour suite of the primitives beside the
// Mutex (Semaphore, MultiMutex, RWMutex, Election), written once and run
// against every adapter, as internal/mutextest is for the Mutex: each
// adapter's tests call Run with a constructor for its Pool.
//
// Run starts five redis-server processes once, through internal/redistest
// (it skips, or fails with REDSYNC_REQUIRE_REDIS=1, when redis-server is
// missing), and runs every test on the first 1, 3 and 5 of them with
// every adapter. No test pauses or kills a server: a crashed holder is
// one that never releases. Each test works under names of its own (the
// subtest's name), so the tests share the servers.
package primtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/mutextest"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
)

// Adapter is a client library under test, the one the Mutex suite takes,
// so that a caller passes the same list to both suites.
type Adapter = mutextest.Adapter

// Run runs the suite against adapters on 1, 3 and 5 real servers.
func Run(t *testing.T, adapters ...Adapter) {
	servers := redistest.Start(t, 5)
	inspect := make([]*goredislib.Client, len(servers))
	for i, s := range servers {
		inspect[i] = s.Client(t)
	}
	tests := []struct {
		name string
		fn   func(*testing.T, *cluster)
	}{
		{"SemaphoreHoldsAtMostItsPermitsAmongManyGoroutines", testSemaphoreHoldsAtMostItsPermitsAmongManyGoroutines},
		{"SemaphoreTryAcquireOnAFullSemaphoreIsRefused", testSemaphoreTryAcquireOnAFullSemaphoreIsRefused},
		{"SemaphoreReleaseWakesAnAcquire", testSemaphoreReleaseWakesAnAcquire},
		{"SemaphoreCancelledAcquireLeavesNoKey", testSemaphoreCancelledAcquireLeavesNoKey},
		{"SemaphoreCrashedHoldersPermitReturnsAtItsExpiry", testSemaphoreCrashedHoldersPermitReturnsAtItsExpiry},
		{"SemaphoreBadArgumentsAreArgumentErrors", testSemaphoreBadArgumentsAreArgumentErrors},
		{"MultiMutexLocksAllNamesOrNone", testMultiMutexLocksAllNamesOrNone},
		{"MultiMutexCallersListingNamesInOppositeOrdersBothFinish", testMultiMutexCallersListingNamesInOppositeOrdersBothFinish},
		{"MultiMutexAndAMutexOnOneNameExcludeEachOther", testMultiMutexAndAMutexOnOneNameExcludeEachOther},
		{"MultiMutexFailedLockLeavesNothing", testMultiMutexFailedLockLeavesNothing},
		{"MultiMutexCancelledLockLeavesNothing", testMultiMutexCancelledLockLeavesNothing},
		{"MultiMutexBadArgumentsAreArgumentErrors", testMultiMutexBadArgumentsAreArgumentErrors},
		{"RWMutexReadersShareAWriterExcludes", testRWMutexReadersShareAWriterExcludes},
		{"RWMutexWaitingWriterStopsNewReaders", testRWMutexWaitingWriterStopsNewReaders},
		{"RWMutexNeverAWriterWithAnotherHolder", testRWMutexNeverAWriterWithAnotherHolder},
		{"RWMutexAndAMutexOnTheNameExcludeEachOther", testRWMutexAndAMutexOnTheNameExcludeEachOther},
		{"RWMutexCancelledWaitsLeaveNothing", testRWMutexCancelledWaitsLeaveNothing},
		{"RWMutexBadArgumentsAreArgumentErrors", testRWMutexBadArgumentsAreArgumentErrors},
		{"ElectionCandidatesLeadInCampaignOrderAndResignHandsOver", testElectionCandidatesLeadInCampaignOrderAndResignHandsOver},
		{"ElectionOneLeaderAtATimeWithIncreasingTerms", testElectionOneLeaderAtATimeWithIncreasingTerms},
		{"ElectionObserveSeesEveryChangeInOrder", testElectionObserveSeesEveryChangeInOrder},
		{"ElectionCampaignWhileLedFailsFastOrWaitsAndLeavesNothing", testElectionCampaignWhileLedFailsFastOrWaitsAndLeavesNothing},
		{"ElectionBadArgumentsAreArgumentErrors", testElectionBadArgumentsAreArgumentErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, a := range adapters {
				for _, n := range []int{1, 3, 5} {
					t.Run(fmt.Sprintf("%s/%d", a.Name, n), func(t *testing.T) {
						// A test's adapters and server counts run
						// together: most of a test's time is waiting
						// (expiries, cancellations), and each works
						// under names of its own.
						t.Parallel()
						tt.fn(t, newCluster(t, a, servers[:n], inspect[:n]))
					})
				}
			}
		})
	}
}

// cluster is one adapter over n of the servers: processes, each a
// redsync.Redsync with pools of its own, and a client per server to look
// at what the servers hold.
type cluster struct {
	adapter Adapter
	servers []*redistest.Server
	inspect []*goredislib.Client
	// name is the subtest's, under which its keys live.
	name      string
	processes []*redsync.Redsync
	// rs is the first process.
	rs *redsync.Redsync
	// subscribes: the adapter's pools are redis.Subscribers, so releases
	// wake waiters; a Pool without it polls.
	subscribes bool
}

func newCluster(t *testing.T, a Adapter, servers []*redistest.Server, inspect []*goredislib.Client) *cluster {
	c := &cluster{adapter: a, servers: servers, inspect: inspect, name: t.Name()}
	c.rs = c.process(t)
	return c
}

// process returns a Redsync of its own over the cluster's servers, as
// another process of the fleet would have: its own clients, listeners and
// queue entries.
func (c *cluster) process(t *testing.T) *redsync.Redsync {
	t.Helper()
	pools := make([]redis.Pool, len(c.servers))
	for i, s := range c.servers {
		pools[i] = c.adapter.NewPool(t, s.Addr())
	}
	_, c.subscribes = pools[0].(redis.Subscriber)
	warmUp(t, pools)
	rs := redsync.New(pools...)
	// Late replies are handled before the clients close (Cleanup is last
	// in, first out).
	t.Cleanup(rs.Wait)
	c.processes = append(c.processes, rs)
	return rs
}

// warmUp dials a connection of every pool, so that the dial (slow on a
// busy machine running the race detector) does not count against the
// per-server deadline of a test's first request.
func warmUp(t *testing.T, pools []redis.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, pool := range pools {
		conn, err := pool.Get(ctx)
		if err == nil {
			_, err = conn.Get("primtest:warm-up")
			_ = conn.Close()
		}
		require.NoError(t, err, "warming up the pool of server %d", i)
	}
}

// key returns a name of the test's own.
func (c *cluster) key(suffix string) string {
	return c.name + ":" + suffix
}

// wait waits until every process's requests on their way have landed.
func (c *cluster) wait() {
	for _, rs := range c.processes {
		rs.Wait()
	}
}

// values returns what every server holds under key ("" when missing).
func (c *cluster) values(t *testing.T, key string) []string {
	t.Helper()
	return mutextest.Values(t, c.inspect, key)
}

// keysLeft returns the keys the servers hold whose names contain the
// test's name, as "key@server", once the requests on their way landed.
func (c *cluster) keysLeft(t *testing.T) []string {
	t.Helper()
	c.wait()
	var left []string
	for i, client := range c.inspect {
		keys, err := client.Keys(context.Background(), "*"+c.name+"*").Result()
		require.NoError(t, err, "server %d", i)
		for _, k := range keys {
			left = append(left, fmt.Sprintf("%s@%d", k, i))
		}
	}
	return left
}

// assertNothingLeft checks that no server holds a key of the test's. A
// release announced to a waiter leaves a placeholder that expires within
// 50 ms (see redsync.WithHandoff): such keys may stay a moment longer.
func (c *cluster) assertNothingLeft(t *testing.T) {
	t.Helper()
	left := c.keysLeft(t)
	if len(left) == 0 {
		return
	}
	assert.Eventually(t, func() bool { return len(c.keysLeft(t)) == 0 }, 2*time.Second, 5*time.Millisecond,
		"keys left on the servers: %s", strings.Join(left, " "))
}

// repeat returns n copies of s.
func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// waitForListeners waits until every server has a listener for the
// releases announced under name.
func (c *cluster) waitForListeners(t *testing.T, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, client := range c.inspect {
			if n, err := mutextest.ListenersOf(context.Background(), client, name); err != nil || n == 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 2*time.Millisecond, "no listener subscribed to the releases of %q", name)
}

// fastRetry is a short random retry delay, for tests where goroutines
// contend: a fixed one could keep two all-or-nothing attempts colliding.
var fastRetry = redsync.WithRetryDelayFunc(func(int) time.Duration {
	return time.Millisecond + rand.N(4*time.Millisecond)
})

// neverRetry is an hour between tries: a waiter that gets its lock within
// a test was woken, it did not poll.
var neverRetry = redsync.WithRetryDelay(time.Hour)

// snapshot returns, per server, the keys that hold the test's name with
// their serialized values (DUMP, which leaves the expiry out), once the
// requests on their way landed: what a failed or cancelled call must
// leave as it found it.
func (c *cluster) snapshot(t *testing.T) []map[string]string {
	t.Helper()
	c.wait()
	ctx := context.Background()
	out := make([]map[string]string, len(c.inspect))
	for i, client := range c.inspect {
		keys, err := client.Keys(ctx, "*"+c.name+"*").Result()
		require.NoError(t, err, "server %d", i)
		out[i] = make(map[string]string, len(keys))
		for _, k := range keys {
			v, err := client.Dump(ctx, k).Result()
			if err == goredislib.Nil {
				continue // expired meanwhile
			}
			require.NoError(t, err, "server %d", i)
			out[i][k] = v
		}
	}
	return out
}

// assertArgumentError checks that err is an *ArgumentError naming arg.
func assertArgumentError(t *testing.T, err error, arg string, what string) {
	t.Helper()
	var argErr *redsync.ArgumentError
	if assert.ErrorAs(t, err, &argErr, what) {
		assert.Equal(t, arg, argErr.Arg, what)
	}
	assert.ErrorIs(t, err, redsync.ErrInvalidArgument, what)
}

// nilContext is a nil context.Context, for the tests of bad arguments.
var nilContext context.Context
