//go:build linux

package faults

import (
	"time"

	"golang.org/x/sys/unix"
)

// monoNow returns CLOCK_MONOTONIC in nanoseconds: one clock for every
// process of the host, unaffected by changes of the wall clock, running
// while a process is stopped.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC exists on every Linux; nothing to recover.
		panic("faults: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// monoOf converts t, a time.Time with a monotonic reading (as Until
// returns), to CLOCK_MONOTONIC nanoseconds. time.Now is read before the
// clock, so the result errs late by the few nanoseconds between the two
// reads: a window's end never comes out earlier than it was, and an
// overlap cannot hide in the conversion.
func monoOf(t time.Time) int64 {
	now := time.Now()
	mono := monoNow()
	return mono + int64(t.Sub(now))
}
