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

// offer is OfferHead by a releaser of owner that may hand over, with the
// attached value of the offer; attached reports whether attach was called.
func (f *fixture) offer(name string, owner any) (o *Offer, attached bool) {
	o = f.q.OfferHead(Releaser{Name: name, Owner: owner, MayHandOver: true}, func(o *Offer) any {
		attached = true
		return "attached:" + o.Value
	})
	return o, attached
}

// noRelease asserts that no offer was released.
func (f *fixture) noRelease() {
	f.t.Helper()
	select {
	case o := <-f.released:
		f.t.Fatalf("offer of %q released", o.Value)
	default:
	}
}

func TestTheIdleHeadIsOfferedTheLockWithItsValue(t *testing.T) {
	f := newFixture(t, 3)
	w := f.idleHead("n", "waiter", "v1")
	behind := f.idleHead("n", "behind", "v2")
	start := f.clock.advance(time.Millisecond)
	o, attached := f.offer("n", "releaser")
	require.NotNil(t, o)
	assert.True(t, attached)
	assert.Equal(t, "attached:v1", o.Attached())
	assert.Equal(t, "v1", o.Value)
	assert.Equal(t, int64(8000), o.ExpiryArg)
	assert.Equal(t, start, o.Start)
	assert.Equal(t, "waiter", o.Owner())
	assert.False(t, f.q.State("n").HeadPrepared, "the value is the offer's")

	// The waiter finds the offer instead of attempting.
	assert.Same(t, o, w.Attempting(f.clock.Now()))
	assert.Nil(t, w.Attempting(f.clock.Now()), "taken once")
	assert.True(t, o.Settle(2, nil))
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
			w := &testWaiter{wake: make(chan struct{}, 1)}
			s := spec("n", "w")
			s.MayTakeOver = false
			f.q.Join(&w.Waiter, s, f.clock.Now(), w.wake)
			w.Idle("v")
			return w
		}, Releaser{Name: "n", Owner: "r", MayHandOver: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1)
			w := tc.prepare(f)
			attached := false
			o := f.q.OfferHead(tc.from, func(*Offer) any { attached = true; return nil })
			assert.Nil(t, o)
			assert.False(t, attached)
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
	second, attached := f.offer("n", "r2")
	assert.Nil(t, second)
	assert.False(t, attached)
	first.Settle(0, nil)
	w.Leave(false, time.Time{}) // abandons the offer, settled: released
	assert.Same(t, first, <-f.released)
}

func TestEverySeventeenthReleaseInARowIsNotHandedOver(t *testing.T) {
	f := newFixture(t, 1)
	a, b := f.idleHead("n", "a", "v"), f.idleHead("n", "b", "v")
	pass := func() bool {
		o, _ := f.offer("n", "r")
		if o == nil {
			return false
		}
		require.Same(t, o, a.Attempting(f.clock.Now()))
		o.Settle(1, nil)
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
			var until time.Time
			granted := o.Settle(tc.handed, func(u time.Time) { until = u })
			assert.Equal(t, tc.granted, granted)
			if tc.granted {
				assert.Equal(t, o.Start.Add(7920*time.Millisecond), until, "the validity counts from the offer's start")
			} else {
				assert.True(t, until.IsZero(), "grant not called")
			}
			select {
			case <-o.Done():
			default:
				t.Fatal("Done not closed")
			}
			assert.True(t, w.woken(), "the waiter is told")
			require.Same(t, o, w.Attempting(f.clock.Now()))
			w.Leave(granted, until)
			f.noRelease()
		})
	}
}

func TestAnAbandonedOfferIsReleasedOnceWhenBothSettledAndAbandoned(t *testing.T) {
	t.Run("abandoned first", func(t *testing.T) {
		f := newFixture(t, 1)
		w := f.idleHead("n", "w", "v")
		o, _ := f.offer("n", "r")
		require.Same(t, o, w.Attempting(f.clock.Now()))
		o.Abandon() // the waiter's context ended
		f.noRelease()
		assert.True(t, o.Settle(2, nil), "it would have held the lock")
		assert.Same(t, o, <-f.released)
		assert.False(t, w.woken(), "nobody to tell")
		w.Leave(false, time.Time{})
		f.noRelease()
	})
	t.Run("settled first", func(t *testing.T) {
		f := newFixture(t, 1)
		w := f.idleHead("n", "w", "v")
		o, _ := f.offer("n", "r")
		require.Same(t, o, w.Attempting(f.clock.Now()))
		o.Settle(1, nil)
		f.noRelease()
		o.Abandon()
		assert.Same(t, o, <-f.released)
		w.Leave(false, time.Time{})
		f.noRelease()
	})
	t.Run("left with the offer not taken", func(t *testing.T) {
		f := newFixture(t, 1)
		w := f.idleHead("n", "w", "v")
		o, _ := f.offer("n", "r")
		w.Leave(false, time.Time{}) // gave up before seeing the offer
		f.noRelease()
		o.Settle(1, nil)
		assert.Same(t, o, <-f.released)
		f.noRelease()
	})
}
