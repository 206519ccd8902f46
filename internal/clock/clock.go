// Package clock is the time source of the library's timing rules: the
// real one reads time's clock, and Fake is moved by hand, so that a test
// of a rule about time (a deadline, a wait after a quorum, a backlog) is
// decided by the test and not by the scheduler.
package clock

import "time"

// A Clock tells the time and makes timers. Its methods are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time. The real clock's carries a monotonic
	// reading, so that durations between two Nows ignore steps of the
	// wall clock.
	Now() time.Time
	// NewTimer returns a timer that fires once, d from Now.
	NewTimer(d time.Duration) Timer
}

// A Timer sends the time on its channel once it fires, as a time.Timer
// does (Go 1.23 semantics: after Stop or Reset returns, no value of the
// former arming is received). Its methods may be called from one
// goroutine at a time.
type Timer interface {
	// C returns the channel the timer fires on; it is the same channel
	// for the life of the timer.
	C() <-chan time.Time
	// Stop disarms the timer; it reports whether the timer was armed
	// (false: it fired or was stopped already).
	Stop() bool
	// Reset arms the timer to fire d from now; it reports whether the
	// timer was armed.
	Reset(d time.Duration) bool
}

// Real is the clock of the time package.
var Real Clock = realClock{}

// realClock is time's clock.
type realClock struct{}

// Now returns time.Now().
func (realClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer behind a Timer.
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// realTimer is a time.Timer as a Timer.
type realTimer struct{ t *time.Timer }

// C returns the time.Timer's channel.
func (r realTimer) C() <-chan time.Time { return r.t.C }

// Stop stops the time.Timer.
func (r realTimer) Stop() bool { return r.t.Stop() }

// Reset resets the time.Timer.
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
