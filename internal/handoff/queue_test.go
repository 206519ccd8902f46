package handoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWaitersQueueInArrivalOrderAndTheNextIsWokenWhenTheHeadGivesUp(t *testing.T) {
	f := newFixture(t, 3)
	a, b, c := f.join("n", "a"), f.join("n", "b"), f.join("n", "c")
	assert.True(t, a.Head())
	assert.False(t, b.Head())
	assert.Equal(t, 3, f.q.State("n").Queued)

	// A waiter behind the head leaving wakes nobody.
	b.Leave(false, time.Time{})
	assert.False(t, a.woken())
	assert.False(t, c.woken())

	// The head giving up wakes the next: the lock may be free.
	a.Leave(false, time.Time{})
	assert.True(t, c.Head())
	assert.True(t, c.woken())
	c.Leave(false, time.Time{})
	assert.False(t, f.q.Waiting())
	assert.Equal(t, NameState{}, f.q.State("n"))
}

func TestAHeadThatGotTheLockWakesNobodyWhenItLeaves(t *testing.T) {
	f := newFixture(t, 1)
	a, b := f.join("n", "a"), f.join("n", "b")
	a.Leave(true, f.clock.Now().Add(time.Second))
	assert.True(t, b.Head())
	assert.False(t, b.woken())
	b.Leave(false, time.Time{})
}

func TestJoinBehindQueuesOnlyBehindOtherWaitersOfTheName(t *testing.T) {
	f := newFixture(t, 3)
	w := &testWaiter{wake: make(chan struct{}, 1)}
	assert.False(t, f.q.JoinBehind(&w.Waiter, spec("n", "b"), w.wake), "nobody waits")

	a := f.join("other", "a")
	assert.False(t, f.q.JoinBehind(&w.Waiter, spec("n", "b"), w.wake), "nobody waits for n")
	a.Leave(false, time.Time{})

	a = f.join("n", "a")
	require.True(t, f.q.JoinBehind(&w.Waiter, spec("n", "b"), w.wake))
	assert.False(t, w.Head())
	assert.Equal(t, 2, f.q.State("n").Queued)
	a.Leave(false, time.Time{})
	assert.True(t, w.Head())
	w.Leave(false, time.Time{})
}

func TestTheHeadIsWokenOnceAQuorumOfServersAnnouncedARelease(t *testing.T) {
	for _, tc := range []struct {
		servers, silent, enough int
	}{
		{servers: 1, enough: 1},
		{servers: 3, enough: 2},
		{servers: 5, enough: 3},
		{servers: 3, silent: 1, enough: 1}, // a server that cannot announce is not waited for
	} {
		f := newFixtureWithSilent(t, tc.servers, tc.silent)
		require.Equal(t, tc.enough, f.q.enough, "%+v", tc)
		a, b := f.join("n", "a"), f.join("n", "b")
		f.clock.advance(time.Millisecond)
		for node := tc.silent; node < tc.silent+tc.enough-1; node++ {
			f.q.heard(node, ReleaseChannel("n"), "")
			f.q.heard(node, ReleaseChannel("n"), "") // the same server twice counts once
		}
		assert.False(t, a.woken(), "%+v: fewer than enough servers", tc)
		f.q.heard(tc.servers-1, ReleaseChannel("n"), "")
		assert.True(t, a.woken(), "%+v", tc)
		assert.False(t, b.woken(), "only the head tries")
		a.Leave(true, f.clock.Now())
		b.Leave(false, time.Time{})
	}
}

func TestAnnouncementsBeforeTheHeadsLastAttemptStartedDoNotWakeIt(t *testing.T) {
	f := newFixture(t, 3)
	a := f.join("n", "a")
	f.clock.advance(time.Millisecond)
	f.q.heard(0, ReleaseChannel("n"), "")
	// The head attempts again: what it heard before counts no more.
	f.clock.advance(time.Millisecond)
	require.Nil(t, a.Attempting(f.clock.Now()))
	a.Idle("")
	f.clock.advance(time.Millisecond)
	f.q.heard(1, ReleaseChannel("n"), "")
	assert.False(t, a.woken(), "one server since the attempt")
	f.q.heard(0, ReleaseChannel("n"), "")
	assert.True(t, a.woken())
	a.Leave(false, time.Time{})
}

func TestAnnouncementsOfOtherNamesOrChannelsWakeNobody(t *testing.T) {
	f := newFixture(t, 1)
	a := f.join("n", "a")
	f.clock.advance(time.Millisecond)
	f.q.heard(0, ReleaseChannel("m"), "")
	f.q.heard(0, "x", "")
	f.q.heard(0, "n", "")
	assert.False(t, a.woken())
	a.Leave(false, time.Time{})
}

func TestLateAnnouncementsOfAReleaseTakenHereWakeNobodyUntilTheValidityEnds(t *testing.T) {
	f := newFixture(t, 3)
	a, b := f.join("n", "a"), f.join("n", "b")
	f.clock.advance(time.Millisecond)
	f.q.heard(0, ReleaseChannel("n"), "")
	f.q.heard(1, ReleaseChannel("n"), "")
	require.True(t, a.woken())
	// a takes the lock, valid for a second: the announcements heard so
	// far, and those heard within the second, were of the release it took.
	heldUntil := f.clock.Now().Add(time.Second)
	a.Leave(true, heldUntil)
	f.clock.advance(10 * time.Millisecond)
	f.q.heard(1, ReleaseChannel("n"), "")
	f.q.heard(2, ReleaseChannel("n"), "")
	assert.False(t, b.woken())
	assert.Zero(t, f.q.State("n").Confirmed, "nothing recorded")

	f.clock.advance(time.Second)
	f.q.heard(1, ReleaseChannel("n"), "")
	assert.False(t, b.woken())
	f.q.heard(2, ReleaseChannel("n"), "")
	assert.True(t, b.woken(), "announcements after the validity are news")
	b.Leave(false, time.Time{})
}

func TestAReleaseHereWakesTheHeadAtOnceAlsoWithinAValidityTakenHere(t *testing.T) {
	f := newFixture(t, 3)
	a, b, c := f.join("n", "a"), f.join("n", "b"), f.join("n", "c")
	a.Leave(true, f.clock.Now().Add(time.Second))
	f.clock.advance(time.Millisecond)
	f.q.ReleasedHere("n")
	assert.True(t, b.woken(), "whoever held it here released it")
	assert.False(t, c.woken())
	s := f.q.State("n")
	assert.Equal(t, 3, s.Heard, "every server counts as heard")
	assert.Equal(t, 3, s.Confirmed)

	f.q.ReleasedHere("other") // nobody waits for it: nothing happens
	b.Leave(false, time.Time{})
	c.Leave(false, time.Time{})
	f.q.ReleasedHere("n")
}

func TestStateTellsTheHeadsReadiness(t *testing.T) {
	f := newFixture(t, 3)
	a := f.join("n", "a")
	s := f.q.State("n")
	assert.Equal(t, NameState{Queued: 1, Servers: 3, Enough: 2, Listeners: 3, Listening: s.Listening}, s)
	a.Idle("v")
	s = f.q.State("n")
	assert.True(t, s.HeadWaiting)
	assert.True(t, s.HeadPrepared)
	a.Signal()
	assert.True(t, f.q.State("n").HeadWoken)
	a.Leave(false, time.Time{})
}

func TestStaleListenersAreThoseStillCountedWhileNobodyHereWaits(t *testing.T) {
	f := newFixture(t, 3)
	channel := ReleaseChannel("n")
	a := f.join("n", "a")
	require.Eventually(t, func() bool { return f.q.State("n").Listening == 3 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, f.q.StaleListeners("n", channel, 3, same), "they listen for a waiter here")

	// The waiter leaves; servers 0 and 2 do not confirm the
	// unsubscription yet.
	f.servers[0].stall()
	f.servers[2].stall()
	a.Leave(true, f.clock.Now())
	require.Eventually(t, func() bool {
		return !f.servers[0].subscribed(channel) && !f.servers[1].subscribed(channel) && !f.servers[2].subscribed(channel)
	}, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return f.q.StaleListeners("n", channel, 3, same) == 0b101 }, 5*time.Second, time.Millisecond)
	// In a releaser's own order of the servers.
	assert.Equal(t, uint64(0b011), f.q.StaleListeners("n", channel, 3, func(i int) int { return []int{2, 0, 1}[i] }))
	assert.Equal(t, uint64(0b01), f.q.StaleListeners("n", channel, 2, same), "only the releaser's servers")

	f.servers[0].unstall()
	f.servers[2].unstall()
	require.Eventually(t, func() bool { return f.q.StaleListeners("n", channel, 3, same) == 0 }, 5*time.Second, time.Millisecond)
}

// same numbers a releaser's servers as Config.Servers does.
func same(i int) int { return i }
