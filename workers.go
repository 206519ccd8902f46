package redsync

import (
	"time"

	"github.com/quorumlock/redsync/internal/quorum"
)

// inflightCount counts the goroutines talking to servers for a Redsync,
// including replies still on their way after an operation returned. It
// may go up from zero while somebody waits (see quorum.Inflight).
type inflightCount struct {
	quorum.Inflight
}

// add counts a goroutine about to start.
func (c *inflightCount) add() { c.Add() }

// done counts a goroutine of add as finished.
func (c *inflightCount) done() { c.Done() }

// wait blocks until no counted goroutine runs.
func (c *inflightCount) wait() { c.Wait() }

// getTimer returns a recycled timer armed for d; give it back with
// putTimer.
func getTimer(d time.Duration) *time.Timer { return quorum.GetTimer(d) }

// putTimer stops t, drains it and recycles it.
func putTimer(t *time.Timer) { quorum.PutTimer(t) }
