package redsync

import (
	"sync"
	"sync/atomic"
	"time"
)

// workers runs tasks on goroutines that outlive one task: a client call
// grows a fresh goroutine's stack several times, which costs more than the
// call itself on a fast network. An idle worker exits after workerIdle, or
// when Redsync.Wait asks.
type workers struct {
	tasks chan task // unbuffered: a send succeeds only when a worker is idle

	mu      sync.Mutex    // guards quit
	quit    chan struct{} // closed to make the idle workers exit
	running inflightCount // the worker goroutines
}

// workerIdle is how long a worker waits for another task before it exits.
const workerIdle = 100 * time.Millisecond

// run hands t to an idle worker, or starts one.
func (w *workers) run(t task) {
	select {
	case w.tasks <- t:
	default:
		w.running.add()
		go w.work(t)
	}
}

func (w *workers) work(t task) {
	defer w.running.done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.round.serve(t.node, t.pool, t.state)
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(workerIdle)
		select {
		case t = <-w.tasks:
		case <-idle.C:
			return
		case <-w.quitting():
			return
		}
	}
}

func (w *workers) quitting() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.quit == nil {
		w.quit = make(chan struct{})
	}
	return w.quit
}

// stopIdle makes the idle workers exit and waits until no worker runs.
// Workers started meanwhile are waited for too.
func (w *workers) stopIdle() {
	w.mu.Lock()
	if w.quit != nil {
		close(w.quit)
	}
	w.quit = make(chan struct{})
	w.mu.Unlock()
	w.running.wait()
}

// timers recycles the per-server deadline timers of rounds.
var timers sync.Pool

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// putTimer stops t, drains it and recycles it.
func putTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	timers.Put(t)
}

// inflightCount counts the goroutines talking to servers for a Redsync.
// Unlike a sync.WaitGroup, it may go up from zero while somebody waits.
type inflightCount struct {
	n int64 // atomic: the goroutines running

	mu   sync.Mutex // guards the wake-ups of idle
	idle *sync.Cond // broadcast when n drops to zero
}

func (c *inflightCount) add() {
	atomic.AddInt64(&c.n, 1)
}

func (c *inflightCount) done() {
	if atomic.AddInt64(&c.n, -1) == 0 {
		c.mu.Lock()
		if c.idle != nil {
			c.idle.Broadcast()
		}
		c.mu.Unlock()
	}
}

// wait blocks until no goroutine is running.
func (c *inflightCount) wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = sync.NewCond(&c.mu)
	}
	for atomic.LoadInt64(&c.n) > 0 {
		c.idle.Wait()
	}
}
