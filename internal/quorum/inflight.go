package quorum

import (
	"sync"
	"sync/atomic"
)

// Inflight counts goroutines that talk to servers, such as the requests
// of rounds still on their way after the round returned. Unlike a
// sync.WaitGroup, it may go up from zero while somebody waits. The zero
// Inflight counts none; its methods are safe for concurrent use.
type Inflight struct {
	n int64 // atomic: the goroutines running

	mu   sync.Mutex // guards the wake-ups of idle
	idle *sync.Cond // broadcast when n drops to zero
}

// Add counts one more goroutine; call it before starting the goroutine.
func (c *Inflight) Add() {
	atomic.AddInt64(&c.n, 1)
}

// Done counts a goroutine of Add as finished, and wakes Wait when it was
// the last.
func (c *Inflight) Done() {
	if atomic.AddInt64(&c.n, -1) == 0 {
		c.mu.Lock()
		if c.idle != nil {
			c.idle.Broadcast()
		}
		c.mu.Unlock()
	}
}

// Wait blocks until no counted goroutine runs.
func (c *Inflight) Wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = sync.NewCond(&c.mu)
	}
	for atomic.LoadInt64(&c.n) > 0 {
		c.idle.Wait()
	}
}
