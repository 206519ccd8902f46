package primtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/handoff"
)

// electionRetry is the candidates' retry delay: where the pools listen,
// a waiting candidate is handed the lock by the release; where they do
// not, it polls.
var electionRetry = redsync.WithRetryDelay(20 * time.Millisecond)

// awaitQueued waits until every server's fleet queue of name holds
// waiters candidates.
func (c *cluster) awaitQueued(t *testing.T, name string, waiters int64) {
	t.Helper()
	queue, _, ok := handoff.QueueKeys(name)
	require.True(t, ok, "%q has no fleet queue", name)
	require.Eventually(t, func() bool {
		for _, client := range c.inspect {
			if n, err := client.ZCard(context.Background(), queue).Result(); err != nil || n != waiters {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "%d candidates never queued on every server", waiters)
}

// campaignInBackground starts e.Campaign and sends value on won when it
// leads.
func campaignInBackground(t *testing.T, ctx context.Context, e *redsync.Election, value string, won chan<- string) {
	go func() {
		if assert.NoError(t, e.Campaign(ctx, value), "the Campaign of %s", value) {
			won <- value
		}
	}()
}

// receive returns the next value of ch, failing the test when none comes
// in time.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "%s: the channel was closed", what)
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: nothing came", what)
	}
	panic("unreachable")
}

// assertLeader checks that e's Leader is value with term.
func assertLeader(t *testing.T, e *redsync.Election, value string, term uint64) {
	t.Helper()
	l, err := e.Leader(context.Background())
	if assert.NoError(t, err) {
		assert.Equal(t, value, l.Value)
		assert.Equal(t, term, l.Term)
		assert.True(t, l.Until.After(time.Now()), "a leader whose Until passed")
	}
}

func testElectionCandidatesLeadInCampaignOrderAndResignHandsOver(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := c.key("elect")
	ea := c.rs.NewElection(name, electionRetry)
	eb := c.process(t).NewElection(name, electionRetry)
	ec := c.process(t).NewElection(name, electionRetry)
	require.NoError(t, ea.Campaign(ctx, "a"))
	assertLeader(t, ea, "a", ea.Term())

	won := make(chan string, 2)
	campaignInBackground(t, ctx, eb, "b", won)
	if c.subscribes {
		c.awaitQueued(t, name, 1)
	}
	campaignInBackground(t, ctx, ec, "c", won)
	if c.subscribes {
		c.awaitQueued(t, name, 2)
	}

	require.NoError(t, ea.Resign(ctx))
	assert.ErrorIs(t, context.Cause(ea.Context()), redsync.ErrUnlocked)
	first := receive(t, won, "the first waiting candidate")
	next, last := eb, ec
	if c.subscribes {
		assert.Equal(t, "b", first, "the candidate that campaigned first leads first")
	} else if first == "c" {
		next, last = ec, eb // polling candidates take no turns
	}
	assert.Greater(t, next.Term(), ea.Term())
	assertLeader(t, ea, first, next.Term())

	require.NoError(t, next.Resign(ctx))
	second := receive(t, won, "the second waiting candidate")
	assert.NotEqual(t, first, second)
	assert.Greater(t, last.Term(), next.Term())
	assertLeader(t, ea, second, last.Term())
	require.NoError(t, last.Resign(ctx))

	c.wait()
	assert.Equal(t, repeat("", len(c.servers)), c.values(t, name), "the lock stayed after every candidate resigned")
	_, err := ea.Leader(ctx)
	assert.ErrorIs(t, err, redsync.ErrNoLeader)
}

func testElectionOneLeaderAtATimeWithIncreasingTerms(t *testing.T, c *cluster) {
	const candidates, terms = 3, 2
	name := c.key("elect")
	var leaders atomic.Int32
	var mu sync.Mutex // guards won
	var won []uint64  // the terms in the order they were won
	var wg sync.WaitGroup
	for i := range candidates {
		e := c.process(t).NewElection(name, electionRetry)
		wg.Go(func() {
			value := fmt.Sprintf("candidate-%d", i)
			for range terms {
				if !assert.NoError(t, e.Campaign(context.Background(), value)) {
					return
				}
				assert.Equal(t, int32(1), leaders.Add(1), "two leaders at once")
				mu.Lock()
				won = append(won, e.Term())
				mu.Unlock()
				assertLeader(t, e, value, e.Term())
				leaders.Add(-1)
				assert.NoError(t, e.Resign(context.Background()))
				assert.ErrorIs(t, context.Cause(e.Context()), redsync.ErrUnlocked)
			}
		})
	}
	wg.Wait()
	require.Len(t, won, candidates*terms)
	for i := 1; i < len(won); i++ {
		assert.Greater(t, won[i], won[i-1], "term %d won after term %d", won[i], won[i-1])
	}
}

func testElectionObserveSeesEveryChangeInOrder(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := c.key("elect")
	observing, stop := context.WithCancel(ctx)
	seen := c.process(t).NewElection(name).Observe(observing)
	ea := c.rs.NewElection(name, electionRetry)
	eb := c.process(t).NewElection(name, electionRetry)

	// Each change waits until it was seen: Observe may skip a leader
	// that leads for less time than a read takes.
	require.NoError(t, ea.Campaign(ctx, "a"))
	l := receive(t, seen, "the first leader")
	assert.Equal(t, "a", l.Value)
	assert.Equal(t, ea.Term(), l.Term)

	require.NoError(t, ea.Proclaim(ctx, "a2"))
	l = receive(t, seen, "the proclaimed value")
	assert.Equal(t, "a2", l.Value)
	assert.Equal(t, ea.Term(), l.Term, "a Proclaim within the term")

	won := make(chan string, 1)
	campaignInBackground(t, ctx, eb, "b", won)
	if c.subscribes {
		c.awaitQueued(t, name, 1)
	}
	require.NoError(t, ea.Resign(ctx))
	assert.Equal(t, "b", receive(t, won, "the next candidate"))
	l = receive(t, seen, "the next leader")
	assert.Equal(t, "b", l.Value)
	assert.Equal(t, eb.Term(), l.Term)
	assert.Greater(t, l.Term, ea.Term())

	require.NoError(t, eb.Proclaim(ctx, "b2"))
	l = receive(t, seen, "the next leader's proclaimed value")
	assert.Equal(t, "b2", l.Value)
	assert.Equal(t, eb.Term(), l.Term)
	require.NoError(t, eb.Resign(ctx))

	stop()
	for l := range seen {
		assert.Fail(t, "a change after the last", "%+v", l)
	}
}

// testElectionCampaignWhileLedFailsFastOrWaitsAndLeavesNothing: with one
// try (WithTries(1)) a Campaign while another candidate leads fails at
// once, and a waiting Campaign cancelled leaves the servers as they
// were, its place in the queue included.
func testElectionCampaignWhileLedFailsFastOrWaitsAndLeavesNothing(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := c.key("elect")
	leader := c.rs.NewElection(name, electionRetry)
	require.NoError(t, leader.Campaign(ctx, "a"))
	before := c.snapshot(t)

	// A retry delay that a Campaign that waited would show.
	once := c.process(t).NewElection(name, redsync.WithTries(1), neverRetry)
	err := once.Campaign(ctx, "b")
	// Lock's error after its last try, as redsync's: ErrTaken.
	var taken *redsync.ErrTaken
	assert.ErrorAs(t, err, &taken, "a Campaign of one try while another leads")
	assert.Zero(t, once.Term())
	assert.Equal(t, before, c.snapshot(t), "the refused Campaign changed the servers")

	waiting, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	waiter := c.process(t).NewElection(name, electionRetry)
	go func() { done <- waiter.Campaign(waiting, "c") }()
	if c.subscribes {
		c.awaitQueued(t, name, 1)
	} else {
		time.Sleep(50 * time.Millisecond) // a few tries
	}
	stop()
	err = receive(t, done, "the cancelled Campaign")
	assert.ErrorIs(t, err, redsync.ErrFailed)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, before, c.snapshot(t), "the cancelled Campaign changed the servers")
	assertLeader(t, waiter, "a", leader.Term())

	require.NoError(t, leader.Resign(ctx))
	c.wait()
	assert.Equal(t, repeat("", len(c.servers)), c.values(t, name), "the lock stayed after the leader resigned")
}

func testElectionBadArgumentsAreArgumentErrors(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := c.key("elect")
	for _, tt := range []struct {
		what string
		e    *redsync.Election
		arg  string
	}{
		{"empty name", c.rs.NewElection(""), "name"},
		{"bad option", c.rs.NewElection(name, redsync.WithExpiry(0)), "WithExpiry"},
		{"WithValue", c.rs.NewElection(name, redsync.WithValue("v")), "WithValue"},
	} {
		assertArgumentError(t, tt.e.Campaign(ctx, "a"), tt.arg, "Campaign, "+tt.what)
		assertArgumentError(t, tt.e.Proclaim(ctx, "a"), tt.arg, "Proclaim, "+tt.what)
		assertArgumentError(t, tt.e.Resign(ctx), tt.arg, "Resign, "+tt.what)
		_, err := tt.e.Leader(ctx)
		assertArgumentError(t, err, tt.arg, "Leader, "+tt.what)
	}
	e := c.rs.NewElection(name)
	assertArgumentError(t, e.Campaign(ctx, ""), "value", "Campaign, an empty value")
	assertArgumentError(t, e.Campaign(nilContext, "a"), "ctx", "Campaign, nil ctx")
	_, err := e.Leader(nilContext)
	assertArgumentError(t, err, "ctx", "Leader, nil ctx")
	assert.ErrorIs(t, e.Proclaim(ctx, "a"), redsync.ErrNotLeader, "Proclaim before leading")
	require.NoError(t, e.Campaign(ctx, "a"))
	assertArgumentError(t, e.Campaign(ctx, "a"), "Campaign", "Campaign while leading")
	assertArgumentError(t, e.Proclaim(ctx, ""), "value", "Proclaim, an empty value")
	assertArgumentError(t, e.Resign(nilContext), "ctx", "Resign, nil ctx")
	require.NoError(t, e.Resign(ctx))
	c.wait()
	assert.Equal(t, repeat("", len(c.servers)), c.values(t, name), "the lock stayed after the leader resigned")
}
