package handoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idleHead queues a waiter of owner for name, waiting with value v.
func (f *fixture) idleHead(name string, owner any, v string) *testWaiter {
	w := f.join(name, owner)
	w.Idle(v)
	return w
}

// testOffer is an Offer as a caller makes it, with what it was told.
type testOffer struct {
	Offer
	value     string
	expiryArg any
	start     time.Time
	decided   int // calls of decided
	until     time.Time
}

// settle settles o with handed servers handed over.
func (o *testOffer) settle(handed int) bool {
	return o.Settle(handed, func(until time.Time) { o.decided++; o.until = until })
}

// offer is OfferHead by a releaser of owner that may hand over; made
// reports whether newOffer was called.
func (f *fixture) offer(name string, owner any) (o *testOffer, made bool) {
	got := f.q.OfferHead(Releaser{Name: name, Owner: owner, MayHandOver: true}, func(value string, expiryArg any, start time.Time) (*Offer, any) {
		made = true
		o = &testOffer{value: value, expiryArg: expiryArg, start: start}
		return &o.Offer, o
	})
	if got == nil {
		return nil, made
	}
	return got.Attached().(*testOffer), made
}

// noRelease asserts that no offer was released.
func (f *fixture) noRelease() {
	f.t.Helper()
	select {
	case o := <-f.released:
		f.t.Fatalf("offer of %q released", o.Attached().(*testOffer).value)
	default:
	}
}

func TestTheIdleHeadIsOfferedTheLockWithItsValue(t *testing.T) {
	f := newFixture(t, 3)
	w := f.idleHead("n", "waiter", "v1")
	behind := f.idleHead("n", "behind", "v2")
	start := f.clock.advance(time.Millisecond)
	o, made := f.offer("n", "releaser")
	require.NotNil(t, o)
	assert.True(t, made)
	assert.Equal(t, "v1", o.value)
	assert.Equal(t, int64(8000), o.expiryArg)
	assert.Equal(t, start, o.start)
	assert.Equal(t, "waiter", o.Owner())
	assert.False(t, f.q.State("n").HeadPrepared, "the value is the offer's")

	// The waiter finds the offer instead of attempting.
	assert.Same(t, &o.Offer, w.Attempting(f.clock.Now()))
	assert.Nil(t, w.Attempting(f.clock.Now()), "taken once")
	assert.True(t, o.settle(2))
	w.Leave(true, f.clock.Now())
	behind.Leave(false, time.Time{})
	f.noRelease()
}

func TestNoOfferIsMadeToAHeadThatCannotTakeIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(f *fixture) *testWaiter
		from    Releaser
	}{
		{"nobody waits", func(f *fixture) *testWaiter { return nil }, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
		{"waiters of another name", func(f *fixture) *testWaiter { return f.idleHead("m", "w", "v") }, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
		{"the releaser's own waiter", func(f *fixture) *testWaiter { return f.idleHead("n", "r", "v") }, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
		{"the head attempts", func(f *fixture) *testWaiter { return f.join("n", "w") }, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
		{"no value ready", func(f *fixture) *testWaiter { return f.idleHead("n", "w", "") }, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
		{"the releaser may not hand over", func(f *fixture) *testWaiter { return f.idleHead("n", "w", "v") }, Releaser{Name: "n", Owner: "r"}},
		{"the waiter may not take over", func(f *fixture) *testWaiter {
			return f.idleHead("n", noTakeOver("w"), "v")
		}, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1)
			w := tc.prepare(f)
			made := false
			o := f.q.OfferHead(tc.from, func(string, any, time.Time) (*Offer, any) { made = true; return &Offer{}, nil })
			assert.Nil(t, o)
			assert.False(t, made)
			if w != nil {
				assert.Nil(t, w.Attempting(f.clock.Now()), "no offer pending")
				w.Leave(false, time.Time{})
			}
		})
	}
}

func TestAHeadWithAnOfferPendingIsOfferedNothingMore(t *testing.T) {
	f := newFixture(t, 1)
	w := f.idleHead("n", "w", "v")
	first, _ := f.offer("n", "r1")
	require.NotNil(t, first)
	w.Idle("v2") // (it would not: it attempts, and finds the offer)
	second, made := f.offer("n", "r2")
	assert.Nil(t, second)
	assert.False(t, made)
	first.settle(0)
	w.Leave(false, time.Time{}) // abandons the offer, settled: released
	assert.Same(t, &first.Offer, <-f.released)
}

func TestEverySeventeenthReleaseInARowIsNotHandedOver(t *testing.T) {
	f := newFixture(t, 1)
	a, b := f.idleHead("n", "a", "v"), f.idleHead("n", "b", "v")
	pass := func() bool {
		o, _ := f.offer("n", "r")
		if o == nil {
			return false
		}
		require.Same(t, &o.Offer, a.Attempting(f.clock.Now()))
		o.settle(1)
		a.Idle("v") // it held the lock and waits again, say
		return true
	}
	for i := 0; i < MaxHandOversInARow; i++ {
		require.True(t, pass(), "hand-over %d", i+1)
	}
	assert.False(t, pass(), "the next release is made as usual")
	assert.True(t, pass(), "and the count starts again")
	a.Leave(false, time.Time{})
	b.Leave(false, time.Time{})
	f.noRelease()
}

func TestSettleGrantsTheLockOnAQuorumWithinTheValidity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handed  int
		elapsed time.Duration
		granted bool
	}{
		{"a quorum", 2, time.Millisecond, true},
		{"every server", 3, time.Millisecond, true},
		{"short of a quorum", 1, time.Millisecond, false},
		{"none", 0, time.Millisecond, false},
		{"a quorum too late", 3, 7920 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 3)
			w := f.idleHead("n", "w", "v")
			o, _ := f.offer("n", "r")
			require.NotNil(t, o)
			f.clock.advance(tc.elapsed)
			granted := o.settle(tc.handed)
			assert.Equal(t, tc.granted, granted)
			assert.Equal(t, 1, o.decided, "the caller is told once")
			if tc.granted {
				assert.Equal(t, o.start.Add(7920*time.Millisecond), o.until, "the validity counts from the offer's start")
			} else {
				assert.True(t, o.until.IsZero(), "no validity")
			}
			assert.True(t, w.woken(), "the waiter is woken to take it")
			require.Same(t, &o.Offer, w.Attempting(f.clock.Now()))
			w.Leave(granted, o.until)
			f.noRelease()
		})
	}
}

func TestAnAbandonedOfferIsReleasedOnceWhenBothSettledAndAbandoned(t *testing.T) {
	t.Run("abandoned first", func(t *testing.T) {
		f := newFixture(t, 1)
		w := f.idleHead("n", "w", "v")
		o, _ := f.offer("n", "r")
		require.Same(t, &o.Offer, w.Attempting(f.clock.Now()))
		o.Abandon() // the waiter's context ended
		f.noRelease()
		assert.True(t, o.settle(2), "it would have held the lock")
		assert.Same(t, &o.Offer, <-f.released)
		assert.False(t, w.woken(), "nobody to tell")
		w.Leave(false, time.Time{})
		f.noRelease()
	})
	t.Run("settled first", func(t *testing.T) {
		f := newFixture(t, 1)
		w := f.idleHead("n", "w", "v")
		o, _ := f.offer("n", "r")
		require.Same(t, &o.Offer, w.Attempting(f.clock.Now()))
		o.settle(1)
		f.noRelease()
		o.Abandon()
		assert.Same(t, &o.Offer, <-f.released)
		w.Leave(false, time.Time{})
		f.noRelease()
	})
	t.Run("left with the offer not taken", func(t *testing.T) {
		f := newFixture(t, 1)
		w := f.idleHead("n", "w", "v")
		o, _ := f.offer("n", "r")
		w.Leave(false, time.Time{}) // gave up before seeing the offer
		f.noRelease()
		o.settle(1)
		assert.Same(t, &o.Offer, <-f.released)
		f.noRelease()
	})
}
