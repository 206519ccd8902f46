package quorum

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSetHoldsServersOfAnyIndex(t *testing.T) {
	var s Set
	for _, node := range []int{0, 63, 64, 130} {
		assert.False(t, s.Has(node))
		s.Add(node)
		assert.True(t, s.Has(node))
	}
	assert.Equal(t, 4, s.Len())
	assert.Equal(t, []int{0, 63, 64, 130}, s.AppendTo(nil))
	c := s.Clone()
	s.Remove(64)
	s.Remove(1000) // not in s: nothing
	assert.False(t, s.Has(64))
	assert.True(t, c.Has(64), "a clone shares nothing")
	s.Clear()
	assert.Zero(t, s.Len())

	var all Set
	all.Fill(70)
	assert.Equal(t, 70, all.Len())
	assert.True(t, all.Has(69))
	assert.False(t, all.Has(70))
	var few Set
	few.Fill(3)
	assert.Equal(t, 3, few.Len())
}

func TestASetOfUpTo64ServersAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		var s Set
		s.Fill(64)
		s.Remove(5)
		s.Add(5)
		_ = s.Has(63)
	})
	assert.Zero(t, allocs)
}

func TestNodeStateIsBackloggedOnlyWhenManyWaitAndNothingComesBack(t *testing.T) {
	f := newFixture(t, 0)
	var s NodeState
	for i := 0; i < BacklogMin-1; i++ {
		s.Sent(f.clk)
	}
	f.clk.Advance(time.Hour)
	assert.False(t, s.Backlogged(f.clk, time.Second), "fewer than BacklogMin waiting")
	s.Sent(f.clk)
	assert.True(t, s.Backlogged(f.clk, time.Second), "BacklogMin waiting, no reply for an hour")
	assert.False(t, s.Backlogged(f.clk, 2*time.Hour), "no reply for less than the deadline")
	s.Replied(f.clk)
	s.Sent(f.clk)
	assert.False(t, s.Backlogged(f.clk, time.Second), "a reply just came")

	// A burst after a quiet spell: the silence counts from the first
	// request of the burst, not from the last reply before it.
	var b NodeState
	b.Sent(f.clk)
	b.Replied(f.clk)
	f.clk.Advance(time.Hour)
	for i := 0; i < 2*BacklogMin; i++ {
		b.Sent(f.clk)
	}
	assert.False(t, b.Backlogged(f.clk, time.Second))
	f.clk.Advance(2 * time.Second)
	assert.True(t, b.Backlogged(f.clk, time.Second), "then silent for longer than the deadline")
}
