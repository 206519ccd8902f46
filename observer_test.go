package redsync_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/observertest"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// recorder records every event with the operation it belongs to (see
// internal/eventlog).
type recorder = observertest.Recorder

// lines renders the events in the order they came, one line per event,
// except that the node events of an attempt (or of an Unlock or Extend)
// make one line, sorted by node, in the place of the first of them:
// replies come in any order. With late, the line also has the replies that
// came after the attempt was decided (shown like the others); without, they
// are left out. A reply that is not late but comes after its attempt was
// decided gets a line of its own, which no expected output has.
func lines(r *recorder, late bool) []string {
	events := r.Events()
	type round struct{ op, attempt int }
	nodes := map[round]map[int][]string{}
	for _, e := range events {
		if e.Node == nil || (e.Node.Late && !late) {
			continue
		}
		k := round{e.Op, e.Node.Attempt}
		if nodes[k] == nil {
			nodes[k] = map[int][]string{}
		}
		nodes[k][e.Node.Node] = append(nodes[k][e.Node.Node], e.Node.Outcome.String())
	}
	var out []string
	written := map[round]bool{}
	decided := map[round]bool{}
	for _, e := range events {
		switch {
		case e.Start != nil:
			line := e.Start.Op.String() + " start"
			if e.Start.Op == redsync.OpLock {
				line += fmt.Sprintf(" tries=%d", e.Start.Tries)
			}
			out = append(out, line)
		case e.Node != nil && !e.Node.Late:
			k := round{e.Op, e.Node.Attempt}
			if decided[k] {
				out = append(out, fmt.Sprintf("reply after the decision: %+v", *e.Node))
				continue
			}
			if written[k] {
				continue
			}
			written[k] = true
			var nodeList []int
			for n := range nodes[k] {
				nodeList = append(nodeList, n)
			}
			sort.Ints(nodeList)
			var parts []string
			for _, n := range nodeList {
				parts = append(parts, fmt.Sprintf("%d=%s", n, strings.Join(nodes[k][n], "+")))
			}
			line := e.Node.Op.String()
			if e.Node.Op == redsync.OpLock {
				line += fmt.Sprintf(" attempt %d", e.Node.Attempt)
			}
			out = append(out, line+" nodes: "+strings.Join(parts, " "))
		case e.Attempt != nil:
			decided[round{e.Op, e.Attempt.Attempt}] = true
			line := fmt.Sprintf("lock attempt %d try %d: %s", e.Attempt.Attempt, e.Attempt.Try, e.Attempt.Outcome())
			if e.Attempt.HandedOver {
				line += " (handed over)"
			}
			out = append(out, line)
		case e.Done != nil:
			decided[round{e.Op, 0}] = true
			line := fmt.Sprintf("%s done: %s", e.Done.Op, e.Done.Outcome())
			if e.Done.Op == redsync.OpLock {
				line += fmt.Sprintf(" tries=%d attempts=%d", e.Done.Tries, e.Done.Attempts)
			}
			out = append(out, line)
		case e.Lost != nil:
			out = append(out, "lost")
		}
	}
	return out
}

// observedCluster is a Redsync over n real servers (go-redis clients
// with their default options), and a client per server to look at them.
type observedCluster struct {
	servers []*redistest.Server
	inspect []*goredislib.Client
	rs      *redsync.Redsync
}

func newObservedCluster(t *testing.T, n int) *observedCluster {
	c := &observedCluster{servers: redistest.Start(t, n)}
	pools := make([]redis.Pool, n)
	for i, s := range c.servers {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
		c.inspect = append(c.inspect, s.Client(t))
	}
	c.rs = redsync.New(pools...)
	t.Cleanup(c.rs.Wait)
	return c
}

// isAttempt selects the AttemptEvents of a recorder.
func isAttempt(e observertest.Event) bool { return e.Attempt != nil }

// roomy is a per-server deadline that a healthy server always meets, even
// with a fresh connection under the race detector.
var roomy = redsync.WithTimeoutFactor(0.5)

// checkEvents checks what every event of rec carries besides what lines
// shows: the operation's context reached each of them, late replies
// included, and the durations and counts add up.
func checkEvents(t *testing.T, rec *recorder, name string, quorum int) {
	t.Helper()
	for _, e := range rec.Events() {
		if e.Lost == nil {
			require.NotZero(t, e.Op, "an event without the context Start returned: %+v", e)
		}
		switch {
		case e.Start != nil:
			assert.Equal(t, name, e.Start.Name)
		case e.Node != nil:
			assert.Equal(t, name, e.Node.Name)
			if e.Node.Outcome == redsync.NodeOK || e.Node.Outcome == redsync.NodeRefused {
				assert.NoError(t, e.Node.Err)
			} else {
				assert.Error(t, e.Node.Err)
			}
			if e.Node.Outcome == redsync.NodeTimeout {
				assert.ErrorIs(t, e.Node.Err, context.DeadlineExceeded)
				assert.False(t, e.Node.Late)
			}
			assert.Positive(t, e.Node.Latency)
		case e.Attempt != nil:
			assert.Equal(t, name, e.Attempt.Name)
			assert.Equal(t, quorum, e.Attempt.Quorum)
			assert.Positive(t, e.Attempt.Duration)
			if e.Attempt.Acquired {
				assert.GreaterOrEqual(t, e.Attempt.Agreed, quorum)
				assert.NoError(t, e.Attempt.Err)
			} else {
				assert.Error(t, e.Attempt.Err)
			}
		case e.Done != nil:
			assert.Equal(t, name, e.Done.Name)
			assert.Positive(t, e.Done.Duration)
			ok := e.Done.Err == nil
			if e.Done.Op != redsync.OpUnlock {
				assert.Equal(t, ok, e.Done.Validity > 0, "validity %v with error %v", e.Done.Validity, e.Done.Err)
			}
			if e.Done.Op == redsync.OpUnlock {
				assert.Positive(t, e.Done.Held)
			}
		case e.Lost != nil:
			assert.Equal(t, name, e.Lost.Name)
			assert.ErrorIs(t, e.Lost.Cause, redsync.ErrLockLost)
			assert.Positive(t, e.Lost.Held)
		}
	}
}

func TestObserverSeesASuccessfulLockAndUnlock(t *testing.T) {
	c := newObservedCluster(t, 3)
	rec := &recorder{}
	m := c.rs.NewMutex("observed:success", redsync.WithObserver(rec), redsync.WithExpiry(2*time.Second), roomy)
	require.NoError(t, m.Lock())
	c.rs.Wait() // the slowest server's reply is in
	ok, err := m.Extend()
	require.True(t, ok, err)
	c.rs.Wait()
	ok, err = m.Unlock()
	require.True(t, ok, err)
	c.rs.Wait()

	assert.Equal(t, []string{
		"lock start tries=32",
		"lock attempt 1 nodes: 0=ok 1=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"lock done: ok tries=1 attempts=1",
		"extend start",
		"extend nodes: 0=ok 1=ok 2=ok",
		"extend done: ok",
		"unlock start",
		"unlock nodes: 0=ok 1=ok 2=ok",
		"unlock done: ok",
	}, lines(rec, true))
	checkEvents(t, rec, m.Name(), 2)
}

func TestObserverSeesContention(t *testing.T) {
	c := newObservedCluster(t, 3)
	const name = "observed:contention"
	holder := c.rs.NewMutex(name)
	require.NoError(t, holder.Lock())
	c.rs.Wait() // every server holds the holder's value

	t.Run("polling", func(t *testing.T) {
		// Without hand-off the waiter tries once per retry delay: the
		// holder releases during the first delay.
		rec := &recorder{}
		waiter := c.rs.NewMutex(name, redsync.WithObserver(rec), redsync.WithHandoff(false),
			redsync.WithTries(5), redsync.WithRetryDelay(300*time.Millisecond))
		done := make(chan error, 1)
		go func() { done <- waiter.Lock() }()
		rec.Wait(t, isAttempt)
		ok, err := holder.Unlock()
		require.True(t, ok, err)
		require.NoError(t, <-done)
		c.rs.Wait()

		assert.Equal(t, []string{
			"lock start tries=5",
			"lock attempt 1 nodes: 0=refused 1=refused 2=refused",
			"lock attempt 1 try 1: taken",
			"lock attempt 2 nodes: 0=ok 1=ok 2=ok",
			"lock attempt 2 try 2: ok",
			"lock done: ok tries=2 attempts=2",
		}, lines(rec, true))
		checkEvents(t, rec, name, 2)
		holder = waiter
	})

	t.Run("handoff", func(t *testing.T) {
		// With hand-off the waiter gets the lock from the release: the
		// Unlock hands it over, and the waiter's last attempt is that
		// hand-over, whose requests were the Unlock's. It may also try
		// when its subscriptions are confirmed (a release may have gone
		// unheard before), which on a loaded machine can fall in the
		// middle of the release: it then wins by its own try.
		rec := &recorder{}
		waiter := c.rs.NewMutex(name, redsync.WithObserver(rec), redsync.WithRetryDelay(time.Hour))
		done := make(chan error, 1)
		go func() { done <- waiter.Lock() }()
		rec.Wait(t, isAttempt)
		time.Sleep(50 * time.Millisecond) // subscribed
		ok, err := holder.Unlock()
		require.True(t, ok, err)
		require.NoError(t, <-done)
		c.rs.Wait()

		lines := lines(rec, true)
		require.GreaterOrEqual(t, len(lines), 5)
		handedOver := len(lines)%2 == 1
		attempts := (len(lines) - 2) / 2
		if handedOver {
			attempts = (len(lines) - 1) / 2
		}
		// A try during the release finds some servers released (taken
		// while at least two still refuse), and the try that wins may
		// find a straggler not released yet (won while at least two
		// agree).
		midRelease := regexp.MustCompile(`^lock attempt \d+ nodes: 0=(ok|refused) 1=(ok|refused) 2=(ok|refused)$`)
		nodesLine := func(i int, refusing bool) string {
			plain := fmt.Sprintf("lock attempt %d nodes: 0=ok 1=ok 2=ok", i)
			if refusing {
				plain = fmt.Sprintf("lock attempt %d nodes: 0=refused 1=refused 2=refused", i)
			}
			got := lines[2*i-1]
			if midRelease.MatchString(got) && (refusing == (strings.Count(got, "refused") >= 2)) {
				return got
			}
			return plain
		}
		want := []string{"lock start tries=32"}
		for i := 1; i < attempts; i++ {
			want = append(want, nodesLine(i, true), fmt.Sprintf("lock attempt %d try 1: taken", i))
		}
		if handedOver {
			want = append(want, fmt.Sprintf("lock attempt %d try 1: ok (handed over)", attempts))
		} else {
			want = append(want, nodesLine(attempts, false), fmt.Sprintf("lock attempt %d try 1: ok", attempts))
		}
		want = append(want, fmt.Sprintf("lock done: ok tries=1 attempts=%d", attempts))
		assert.Equal(t, want, lines)
		checkEvents(t, rec, name, 2)
		ok, err = waiter.Unlock()
		require.True(t, ok, err)
	})
}

func TestObserverSeesAStalledServer(t *testing.T) {
	c := newObservedCluster(t, 3)
	const name = "observed:stalled"
	// A 200 ms per-server deadline, met by connections already open.
	opts := []redsync.Option{redsync.WithExpiry(4 * time.Second), redsync.WithTimeoutFactor(0.05)}
	warmUp := c.rs.NewMutex(name)
	require.NoError(t, warmUp.Lock())
	_, _ = warmUp.Unlock()
	c.rs.Wait()
	rec := &recorder{}
	c.rs.SetObserver(rec)
	c.servers[1].Pause(t)
	holder := c.rs.NewMutex(name, opts...)
	require.NoError(t, holder.Lock())
	var taken *redsync.ErrTaken
	require.ErrorAs(t, c.rs.NewMutex(name, opts...).TryLock(), &taken)
	ok, err := holder.Unlock()
	require.True(t, ok, err)

	// The healthy servers decide at once; a refused TryLock waits for the
	// deadline of the stalled one, to name every server in its error.
	assert.Equal(t, []string{
		"lock start tries=32",
		"lock attempt 1 nodes: 0=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"lock done: ok tries=1 attempts=1",
		"lock start tries=1",
		"lock attempt 1 nodes: 0=refused 1=timeout 2=refused",
		"lock attempt 1 try 1: taken",
		"lock done: taken tries=1 attempts=1",
		"unlock start",
		"unlock nodes: 0=ok 2=ok",
		"unlock done: ok",
	}, lines(rec, false))

	// Once it resumes, the stalled server's replies to the three
	// operations come in late, each with the context of its operation.
	c.servers[1].Resume(t)
	c.rs.Wait()
	var late []redsync.NodeEvent
	var lateOps []int
	for _, e := range rec.Events() {
		if e.Node != nil && e.Node.Late {
			late = append(late, *e.Node)
			lateOps = append(lateOps, e.Op)
		}
	}
	require.Len(t, late, 3, "one late reply per operation: %+v", late)
	sort.Ints(lateOps)
	assert.Equal(t, []int{1, 2, 3}, lateOps)
	for _, e := range late {
		assert.Equal(t, 1, e.Node)
		assert.Contains(t, []redsync.NodeOutcome{redsync.NodeOK, redsync.NodeRefused, redsync.NodeExpired}, e.Outcome, "%+v", e)
	}
	checkEvents(t, rec, name, 2)
}

func TestObserverSeesADeadServer(t *testing.T) {
	c := newObservedCluster(t, 3)
	const name = "observed:dead"
	rec := &recorder{}
	c.rs.SetObserver(rec)
	c.servers[2].Kill(t)
	m := c.rs.NewMutex(name, redsync.WithExpiry(time.Second), roomy)
	require.NoError(t, m.Lock())
	ok, err := m.Unlock()
	require.True(t, ok, err)
	// go-redis dials a dead server again until the request's context,
	// bounded by the expiry, ends: the errors may come in late.
	c.rs.Wait()

	assert.Equal(t, []string{
		"lock start tries=32",
		"lock attempt 1 nodes: 0=ok 1=ok 2=error",
		"lock attempt 1 try 1: ok",
		"lock done: ok tries=1 attempts=1",
		"unlock start",
		"unlock nodes: 0=ok 1=ok 2=error",
		"unlock done: ok",
	}, lines(rec, true))
	checkEvents(t, rec, name, 2)
}

func TestObserverSeesALostLock(t *testing.T) {
	c := newObservedCluster(t, 3)
	const name = "observed:lost"
	rec := &recorder{}
	m := c.rs.NewMutex(name, redsync.WithObserver(rec), redsync.WithExpiry(time.Second), roomy, redsync.WithKeepAliveInterval(20*time.Millisecond))
	require.NoError(t, m.Lock())
	c.rs.Wait()
	// Somebody else holds the key now, on every server.
	for _, client := range c.inspect {
		require.NoError(t, client.Set(context.Background(), name, "somebody else", time.Second).Err())
	}
	held, err := m.KeepAlive(context.Background())
	require.NoError(t, err)
	<-held.Done()
	ok, err := m.Unlock()
	assert.False(t, ok)
	var taken *redsync.ErrTaken
	assert.ErrorAs(t, err, &taken)
	c.rs.Wait()

	assert.Equal(t, []string{
		"lock start tries=32",
		"lock attempt 1 nodes: 0=ok 1=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"lock done: ok tries=1 attempts=1",
		"keepalive start",
		"keepalive nodes: 0=refused 1=refused 2=refused",
		"keepalive done: taken",
		"lost",
		"unlock start",
		"unlock nodes: 0=refused 1=refused 2=refused",
		"unlock done: taken",
	}, lines(rec, true))
	checkEvents(t, rec, name, 2)
	for _, e := range rec.Events() {
		if e.Lost != nil {
			assert.Equal(t, context.Cause(held), e.Lost.Cause, "the cause the holder sees")
		}
	}
}

// miniredisPools starts n embedded miniredis servers and returns a
// go-redis pool for each.
func miniredisPools(t *testing.T, n int) []redis.Pool {
	pools := make([]redis.Pool, n)
	for i := range pools {
		client := goredislib.NewClient(&goredislib.Options{Addr: miniredis.RunT(t).Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	return pools
}

func TestObserverSetOnRedsyncOrMutex(t *testing.T) {
	pools := miniredisPools(t, 1)
	rs := redsync.New(pools...)
	defer rs.Wait()
	before := rs.NewMutex("made-before")
	onRedsync, onMutex := &recorder{}, &recorder{}
	rs.SetObserver(onRedsync)
	cases := []struct {
		m    *redsync.Mutex
		want *recorder
	}{
		{before, nil},
		{rs.NewMutex("redsync's"), onRedsync},
		{rs.NewMutex("mutex's", redsync.WithObserver(onMutex)), onMutex},
		{rs.NewMutex("none", redsync.WithObserver(nil)), nil},
	}
	for _, tc := range cases {
		n1, n2 := len(onRedsync.Events()), len(onMutex.Events())
		require.NoError(t, tc.m.Lock())
		_, err := tc.m.Unlock()
		require.NoError(t, err)
		rs.Wait()
		assert.Equal(t, tc.want == onRedsync, len(onRedsync.Events()) > n1, tc.m.Name())
		assert.Equal(t, tc.want == onMutex, len(onMutex.Events()) > n2, tc.m.Name())
	}
	rs.SetObserver(nil)
	m := rs.NewMutex("after")
	require.NoError(t, m.Lock())
	n := len(onRedsync.Events())
	_, _ = m.Unlock()
	assert.Len(t, onRedsync.Events(), n, "SetObserver(nil) observes nothing")
}

func TestObserverSeesArgumentErrorsNotAndNotHeldAsDone(t *testing.T) {
	pools := miniredisPools(t, 1)
	rs := redsync.New(pools...)
	rec := &recorder{}
	rs.SetObserver(rec)
	_ = rs.NewMutex("").Lock() // *ArgumentError: not observed
	_, err := rs.NewMutex("never-locked").Unlock()
	require.ErrorIs(t, err, redsync.ErrNotHeld)
	assert.Equal(t, []string{"unlock start", "unlock done: not_held"}, lines(rec, true))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = rs.NewMutex("cancelled").LockContext(ctx)
	require.ErrorIs(t, err, context.Canceled)
	lines := lines(rec, true)
	assert.Equal(t, []string{"lock start tries=32", "lock done: canceled tries=1 attempts=0"}, lines[2:])
	events := rec.Events()
	assert.True(t, events[len(events)-1].Done.Canceled)
	assert.True(t, errors.Is(events[len(events)-1].Done.Err, redsync.ErrFailed))
}

func TestMultiObserverPassesEveryEventToEachInTurn(t *testing.T) {
	pools := miniredisPools(t, 3)
	rs := redsync.New(pools...)
	first, second := &recorder{}, &recorder{}
	rs.SetObserver(redsync.MultiObserver(first, nil, second))
	m := rs.NewMutex("multi")
	require.NoError(t, m.Lock())
	rs.Wait()
	_, err := m.Unlock()
	require.NoError(t, err)
	rs.Wait()
	want := []string{
		"lock start tries=32",
		"lock attempt 1 nodes: 0=ok 1=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"lock done: ok tries=1 attempts=1",
		"unlock start",
		"unlock nodes: 0=ok 1=ok 2=ok",
		"unlock done: ok",
	}
	assert.Equal(t, want, lines(first, true))
	assert.Equal(t, want, lines(second, true))
	// The second observer got the context the first returned.
	for _, e := range second.Events() {
		assert.NotZero(t, first.OpIn(e.Ctx), "%+v", e)
	}
}

// TestObserverCountsEachAttemptOnce: waiters queued behind another waiter
// of their process reach the end of retry delays without attempting (the
// head attempts); a Lock's DoneEvent counts the attempts it made, one per
// AttemptEvent, numbered in turn.
func TestObserverCountsEachAttemptOnce(t *testing.T) {
	c := newObservedCluster(t, 3)
	const name = "observed:counted"
	holder := c.rs.NewMutex(name)
	require.NoError(t, holder.Lock())

	const waiters = 4
	recs := make([]*recorder, waiters)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = &recorder{}
		m := c.rs.NewMutex(name, redsync.WithObserver(recs[i]), redsync.WithTries(1000),
			redsync.WithRetryDelay(20*time.Millisecond))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if assert.NoError(t, m.Lock()) {
				_, err := m.Unlock()
				assert.NoError(t, err)
			}
		}()
	}
	// Several retry delays pass while they queue.
	for _, rec := range recs {
		rec.Wait(t, isAttempt)
	}
	time.Sleep(150 * time.Millisecond)
	ok, err := holder.Unlock()
	require.True(t, ok, err)
	wg.Wait()

	for i, rec := range recs {
		attempts := rec.Attempts()
		var lock redsync.DoneEvent
		for _, d := range rec.Dones() {
			if d.Op == redsync.OpLock {
				lock = d
			}
		}
		assert.Equal(t, len(attempts), lock.Attempts, "waiter %d: attempts counted", i)
		for n, a := range attempts {
			assert.Equal(t, n+1, a.Attempt, "waiter %d: attempt numbers", i)
		}
		assert.Greater(t, lock.Tries, 2, "waiter %d: retry delays passed", i)
	}
}
