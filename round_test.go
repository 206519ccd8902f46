package redsync

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/quorum"
	"github.com/quorumlock/redsync/internal/scripts"
)

// TestUnlockRightAfterLockReleasesEachServerOnce: Lock returns at quorum,
// and the Unlock that follows at once finds acquires still on their way to
// the other servers. Its release waits for each of them rather than racing
// it, so every server gets exactly one release and no late one.
func TestUnlockRightAfterLockReleasesEachServerOnce(t *testing.T) {
	servers, pools := miniPools(t, 5)
	counting := make([]*fakepool.Pool, len(pools))
	for i := range pools {
		counting[i] = fakepool.New(pools[i])
		pools[i] = counting[i]
	}
	rs := New(pools...)
	// A per-server deadline (4 s) that a loaded machine keeps: a try that
	// misses it is released and tried again, which sends more releases.
	m := rs.NewMutex("once", WithTimeoutFactor(0.5))
	const n = 200
	for i := 0; i < n; i++ {
		require.NoError(t, m.Lock())
		ok, err := m.Unlock()
		require.NoError(t, err)
		require.True(t, ok)
		// Unlock too returns at quorum. The next Lock waits for the
		// releases still on their way: on a loaded machine its acquires
		// could overtake them, be refused where the old key still is, and
		// a try short of a quorum is released and tried again, which sends
		// more releases (seen in CI).
		rs.Wait()
	}
	rs.Wait()
	for i, p := range counting {
		assert.Equal(t, n, p.Evals(scripts.Release), "server %d", i)
		assert.False(t, servers[i].Exists("once"), "server %d", i)
	}
}

// TestUnlockDoesNotWaitForAStalledServerToReleaseTheOthers: a release waits
// only for the acquire of its own server, so a stalled server does not keep
// the key on a server that was merely a little slower.
func TestUnlockDoesNotWaitForAStalledServerToReleaseTheOthers(t *testing.T) {
	servers, pools := miniPools(t, 5)
	stalled := make(chan struct{})
	slow := fakepool.New(pools[3]).On(fakepool.SetNX, fakepool.Delay(30*time.Millisecond))
	pools[3] = slow
	// Stalled until the test ends, past its requests' deadlines (not
	// fakepool.Block, which gives up when the request's context ends).
	pools[4] = fakepool.New(pools[4]).On(fakepool.SetNX, fakepool.Before(func(*fakepool.Call) error {
		<-stalled
		return nil
	}))
	rs := New(pools...)
	defer rs.Wait()
	defer close(stalled) // before Wait: the server resumes
	m := rs.NewMutex("stalled", WithExpiry(5*time.Second))
	require.NoError(t, m.Lock())
	ok, err := m.Unlock()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Eventually(t, func() bool {
		return slow.Evals(scripts.Release) == 1 && !servers[3].Exists("stalled")
	}, 2*time.Second, 5*time.Millisecond, "the slow server is released once its acquire is in, while the other stays stalled")
}

// TestServerRequestsKeepTheCallersValuesButNotItsCancellation: the requests
// of a round see the caller's context values (for tracing, say) and a
// deadline within the expiry, but a caller that gives up does not cut them
// off, nor a context a client derives from theirs.
func TestServerRequestsKeepTheCallersValuesButNotItsCancellation(t *testing.T) {
	type traceKey struct{}
	_, pools := miniPools(t, 1)
	const expiry = 4 * time.Second
	stalled, cancelled := make(chan struct{}), make(chan struct{})
	seen := make(chan string, 1)
	var first int32
	pools[0] = fakepool.New(pools[0]).On(fakepool.PoolGet, fakepool.Before(func(c *fakepool.Call) error {
		ctx := c.Ctx
		if !atomic.CompareAndSwapInt32(&first, 0, 1) {
			return nil // the release of the given-up try
		}
		start := time.Now()
		derived, stop := context.WithTimeout(ctx, time.Hour) // as a client might
		defer stop()
		close(stalled)
		<-cancelled
		deadline, ok := ctx.Deadline()
		switch {
		case ctx.Value(traceKey{}) != "trace-1":
			seen <- fmt.Sprintf("value %v", ctx.Value(traceKey{}))
		case !ok || deadline.Sub(start) > expiry || deadline.Sub(start) < expiry*(quorum.BoundShare-1)/quorum.BoundShare-time.Second:
			seen <- fmt.Sprintf("deadline %v from the start, expiry %v", deadline.Sub(start), expiry)
		case ctx.Err() != nil || derived.Err() != nil:
			seen <- fmt.Sprintf("cancelled with the caller: %v, derived %v", ctx.Err(), derived.Err())
		default:
			seen <- "ok"
		}
		return nil
	}))
	rs := New(pools...)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), traceKey{}, "trace-1"))
	go func() {
		<-stalled
		cancel()
		time.Sleep(10 * time.Millisecond)
		close(cancelled)
	}()
	err := rs.NewMutex("values", WithExpiry(expiry)).LockContext(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "ok", <-seen)
	rs.Wait()
}

// TestAReplyThatIsNoScriptReplyCountsForNothing: a server whose client
// hands back neither a reply nor an error (go-redis does so for the
// commands of a pipeline it could not send) has not run the script: it
// must not count as extended or released.
func TestAReplyThatIsNoScriptReplyCountsForNothing(t *testing.T) {
	servers, pools := miniPools(t, 3)
	// Extend and Release answer nothing: no reply and no error.
	silent := func(c *fakepool.Call, send fakepool.Send) (any, error) {
		if c.Script == scripts.Extend || c.Script == scripts.Release {
			return nil, nil
		}
		return send()
	}
	for i := 1; i < 3; i++ {
		pools[i] = fakepool.New(pools[i]).On(fakepool.Eval, silent)
	}
	rs := New(pools...)
	defer rs.Wait()
	m := rs.NewMutex("silent")
	require.NoError(t, m.Lock())

	ok, err := m.Extend()
	assert.False(t, ok, "extended on one server of three")
	assert.ErrorContains(t, err, "unexpected reply")

	ok, err = m.Unlock()
	assert.False(t, ok, "released on one server of three")
	assert.ErrorContains(t, err, "unexpected reply")
	assert.False(t, servers[0].Exists("silent"))
	assert.True(t, servers[1].Exists("silent"), "the silent servers kept the key")
}

// TestAKeepAliveExtensionBackAfterUntilLosesTheLock: an extension whose
// replies come after the lock's validity ended (the process was stopped
// between KeepAlive's check and the replies) must not move Until: another
// holder may have had the lock in between, and setting the expired keys
// again would hide that. Extend keeps redsync's meaning.
func TestAKeepAliveExtensionBackAfterUntilLosesTheLock(t *testing.T) {
	_, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	m := rs.NewMutex("lapsed", WithExpiry(time.Second))
	require.NoError(t, m.Lock())
	m.mu.Lock()
	m.held.until = time.Now().Add(-time.Millisecond) // as after a pause
	lapsed := m.held.until
	m.mu.Unlock()

	_, err := m.extend(context.Background(), OpKeepAlive, true)
	assert.ErrorIs(t, err, ErrLockLost)
	assert.Equal(t, lapsed, m.Until(), "Until moved by an extension that came back too late")

	ok, err := m.Extend()
	assert.True(t, ok, "Extend of a lapsed lock whose keys are still there: %v", err)
	ok, err = m.Unlock()
	assert.True(t, ok, err)
}
