package clock

import (
	"sync"
	"time"
)

// Fake is a Clock whose time moves only by Advance, for deterministic
// tests. Its timers fire during the Advance that reaches their time, in
// the order of their times. Its methods are safe for concurrent use.
type Fake struct {
	mu      sync.Mutex // guards the fields below
	now     time.Time
	timers  map[*fakeTimer]struct{} // the armed timers
	changed chan struct{}           // closed when the armed timers change
}

// NewFake returns a Fake whose time is start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, timers: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer armed to fire d from the fake time.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the fake time d forward and fires the timers it reaches.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for {
		var first *fakeTimer
		for t := range f.timers {
			if !t.at.After(f.now) && (first == nil || t.at.Before(first.at)) {
				first = t
			}
		}
		if first == nil {
			return
		}
		f.disarmLocked(first)
		select {
		case first.c <- first.at:
		default: // the former value was not received: drop this one, as time's
		}
	}
}

// WaitArmed blocks until a timer is armed to fire at at, or done is
// closed; it reports whether such a timer was found. Tests use it to
// learn that the code under test waits for that time.
func (f *Fake) WaitArmed(at time.Time, done <-chan struct{}) bool {
	for {
		f.mu.Lock()
		for t := range f.timers {
			if t.at.Equal(at) {
				f.mu.Unlock()
				return true
			}
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

// Armed returns the number of timers armed.
func (f *Fake) Armed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// disarmLocked removes t from the armed timers; f.mu is held.
func (f *Fake) disarmLocked(t *fakeTimer) bool {
	if _, ok := f.timers[t]; !ok {
		return false
	}
	delete(f.timers, t)
	f.notifyLocked()
	return true
}

// notifyLocked wakes WaitArmed; f.mu is held.
func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// fakeTimer is a timer of a Fake; at and the arming are guarded by f.mu.
type fakeTimer struct {
	f  *Fake
	c  chan time.Time // buffered: Advance never blocks on it
	at time.Time
}

// C returns the timer's channel.
func (t *fakeTimer) C() <-chan time.Time { return t.c }

// Stop disarms t and drops a value it sent and nobody received.
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drainLocked()
	return t.f.disarmLocked(t)
}

// Reset arms t to fire d from the fake time, dropping a value it sent and
// nobody received.
func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drainLocked()
	_, armed := t.f.timers[t]
	t.at = t.f.now.Add(d)
	t.f.timers[t] = struct{}{}
	t.f.notifyLocked()
	if d <= 0 {
		t.fireLocked()
	}
	return armed
}

// fireLocked fires t at once (a Reset to a time passed); f.mu is held.
func (t *fakeTimer) fireLocked() {
	delete(t.f.timers, t)
	t.c <- t.at
}

// drainLocked drops a value t sent and nobody received; f.mu is held.
func (t *fakeTimer) drainLocked() {
	select {
	case <-t.c:
	default:
	}
}
