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
	a.Attempting(f.clock.Now())
	a.Idle()
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
	a.Queue("v")
	a.Idle()
	s = f.q.State("n")
	assert.True(t, s.HeadWaiting)
	assert.True(t, s.HeadQueued)
	a.Signal()
	assert.True(t, f.q.State("n").HeadWoken)
	a.Leave(false, time.Time{})
}

func TestAHandOverWakesTheWaiterOfItsValueAlone(t *testing.T) {
	f := newFixture(t, 3)
	a := f.join("n", "a")
	b := f.join("n", "b")
	a.Queue("va")
	b.Queue("vb")
	a.woken() // the head of a new queue may be woken at once
	f.q.heard(1, ReleaseChannel("n"), "h12:vb")
	assert.False(t, a.woken(), "handed to another value")
	assert.True(t, b.woken())
	handed := make([]int64, 3)
	assert.Equal(t, 1, b.Handed(handed, nil))
	assert.Equal(t, []int64{0, 13, 0}, handed)
	f.q.heard(2, ReleaseChannel("n"), "h-4:vb") // a server clock that went back counts as no wait
	assert.Equal(t, 2, b.Handed(handed, nil))
	assert.Equal(t, []int64{0, 13, 1}, handed)
	assert.True(t, b.woken())
	f.q.heard(0, ReleaseChannel("n"), "h5:elsewhere") // a waiter of another process
	assert.False(t, a.woken() || b.woken())
	assert.Equal(t, NameState{}.Heard, f.q.State("n").Heard, "a hand-over is no release: the lock is not free")

	floors := make([]uint64, 3)
	f.q.heard(0, ReleaseChannel("n"), "f7,1800000000000001:vb") // to a fenced waiter
	assert.Equal(t, 3, b.Handed(handed, floors))
	assert.Equal(t, []uint64{1800000000000001, 0, 0}, floors)
	assert.True(t, b.woken())

	b.Queue("vb2") // a new value forgets the old one's hand-overs
	assert.Zero(t, b.Handed(handed, nil))
	f.q.heard(1, ReleaseChannel("n"), "h1:vb")
	assert.False(t, b.woken())
	a.Leave(false, time.Time{})
	b.Leave(false, time.Time{})
}

func TestParseHandedRefusesOtherPayloads(t *testing.T) {
	for _, p := range []string{"", "h", "h1", "h1:", "hx:v", "x1:v", "h:v", "f1:v", "f1,:v", "f1,0:v", "f1,x:v", "fx,5:v"} {
		if _, _, _, ok := parseHanded(p); ok {
			t.Errorf("parseHanded(%q) accepted it", p)
		}
	}
	waited, floor, value, ok := parseHanded("h25:a:b")
	assert.True(t, ok)
	assert.Equal(t, int64(25), waited)
	assert.Zero(t, floor)
	assert.Equal(t, "a:b", value)
	waited, floor, value, ok = parseHanded("f3,99:a,b:c")
	assert.True(t, ok)
	assert.Equal(t, int64(3), waited)
	assert.Equal(t, uint64(99), floor)
	assert.Equal(t, "a,b:c", value)
}

func TestQueueKeysShareTheSlotOfTheName(t *testing.T) {
	for _, c := range []struct {
		name, queue string
		ok          bool
	}{
		{"orders", "{orders}:redsync:queue", true},
		{"{orders}:lock", "{orders}:lock:redsync:queue", true},
		{"a{b", "{a{b}:redsync:queue", true},
		{"a}b", "a}b", false},
		{"a{}b", "a{}b", false},
	} {
		queue, entries, ok := QueueKeys(c.name)
		if queue != c.queue || ok != c.ok {
			t.Errorf("QueueKeys(%q) = %q, %v; want %q, %v", c.name, queue, ok, c.queue, c.ok)
		}
		if !ok && entries != c.name {
			t.Errorf("QueueKeys(%q) entries = %q; want the name", c.name, entries)
		}
	}
}

func TestAHandOverHereEndsTheValidityTakenHereButWakesNobody(t *testing.T) {
	f := newFixture(t, 3)
	a, b := f.join("n", "a"), f.join("n", "b")
	a.Leave(true, f.clock.Now().Add(time.Second))
	f.clock.advance(time.Millisecond)
	f.q.HandedOverHere("n")
	assert.False(t, b.woken(), "the key went to a waiter")
	// An empty announcement now is news (an outsiders' window), not a
	// late one of the release a took.
	f.q.heard(0, ReleaseChannel("n"), "")
	f.q.heard(1, ReleaseChannel("n"), "")
	assert.True(t, b.woken())
	b.Leave(false, time.Time{})
	f.q.HandedOverHere("n") // nobody waits: nothing happens
}

// TestAWatcherIsWokenByEveryReleaseAndHoldsNobodyBack: a waiter that
// watches (a MultiMutex's, for one of its names) takes no turn: the
// queue's head is woken as if it were not there, and so is the watcher.
func TestAWatcherIsWokenByEveryReleaseAndHoldsNobodyBack(t *testing.T) {
	f := newFixture(t, 3)
	watcher := &testWaiter{wake: make(chan struct{}, 1)}
	f.q.Join(&watcher.Waiter, Spec{Name: "n", Owner: "m", Watch: true}, f.clock.Now(), watcher.wake)
	assert.False(t, watcher.Head())
	assert.Equal(t, 1, f.q.State("n").Watching)
	assert.Zero(t, f.q.State("n").Queued)
	w := &testWaiter{wake: make(chan struct{}, 1)}
	assert.False(t, f.q.JoinBehind(&w.Waiter, spec("n", "a"), w.wake), "a watcher is nobody to queue behind")
	a := f.join("n", "a")
	assert.True(t, a.Head(), "the first waiter that takes turns heads the queue")

	f.clock.advance(time.Millisecond)
	f.q.heard(0, ReleaseChannel("n"), "")
	assert.False(t, watcher.woken(), "one server of 3")
	f.q.heard(1, ReleaseChannel("n"), "")
	assert.True(t, a.woken())
	assert.True(t, watcher.woken())

	watcher.Attempting(f.clock.advance(time.Millisecond))
	watcher.Idle()
	f.clock.advance(time.Millisecond)
	f.q.ReleasedHere("n")
	assert.True(t, watcher.woken(), "a release here wakes it at once")
	a.Leave(false, time.Time{})
	assert.Equal(t, 1, f.q.State("n").Watching)
	assert.True(t, f.q.Waiting())
	watcher.Leave(false, time.Time{})
	assert.False(t, f.q.Waiting())
	assert.Equal(t, NameState{}, f.q.State("n"))
}
