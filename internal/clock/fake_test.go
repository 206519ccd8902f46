package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestFakeTimersFireOnlyWhenAdvancedToTheirTime(t *testing.T) {
	f := NewFake(t0)
	a, b := f.NewTimer(time.Second), f.NewTimer(2*time.Second)
	assert.Equal(t, 2, f.Armed())
	f.Advance(time.Second - 1)
	assertIdle(t, a)
	f.Advance(1)
	assert.Equal(t, t0.Add(time.Second), <-a.C())
	assertIdle(t, b)
	assert.True(t, b.Stop(), "armed when stopped")
	f.Advance(time.Hour)
	assertIdle(t, b)
	assert.False(t, b.Reset(time.Minute), "stopped when reset")
	at := t0.Add(time.Second + time.Hour + time.Minute)
	assert.True(t, f.WaitArmed(at, nil))
	f.Advance(time.Minute)
	assert.Equal(t, at, <-b.C())
	assert.Equal(t, at, f.Now())
	assert.Zero(t, f.Armed())
}

func TestAFakeTimerResetDropsTheValueNobodyReceived(t *testing.T) {
	f := NewFake(t0)
	a := f.NewTimer(time.Second)
	f.Advance(time.Second)
	a.Reset(time.Second)
	assertIdle(t, a)
	a.Reset(0)
	assert.Equal(t, t0.Add(time.Second), <-a.C(), "a timer reset to now fires at once")
}

func TestTheRealClockIsTimes(t *testing.T) {
	before := time.Now()
	assert.False(t, Real.Now().Before(before))
	timer := Real.NewTimer(time.Hour)
	assert.True(t, timer.Stop())
	assert.False(t, timer.Reset(time.Nanosecond))
	<-timer.C()
}

// assertIdle fails t when timer fired.
func assertIdle(t *testing.T, timer Timer) {
	t.Helper()
	select {
	case v := <-timer.C():
		t.Fatalf("fired at %v", v)
	default:
	}
}
