package quorum

import (
	"sync"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// workers runs tasks on goroutines that outlive one task: a client call
// grows a fresh goroutine's stack several times, which costs more than the
// call itself on a fast network. An idle worker exits after workerIdle, or
// when stopIdle asks. Its idle timers are time's, not the Engine's clock:
// when a worker exits decides no round.
type workers struct {
	tasks chan task // unbuffered: a send succeeds only when a worker is idle

	mu      sync.Mutex    // guards quit
	quit    chan struct{} // closed to make the idle workers exit
	running Inflight      // the worker goroutines
}

// A task is one server's part of a round.
type task struct {
	round *roundState
	node  int
	pool  redis.Pool
	state *NodeState
}

// workerIdle is how long a worker waits for another task before it exits.
const workerIdle = 100 * time.Millisecond

// run hands t to an idle worker, or starts one.
func (w *workers) run(t task) {
	select {
	case w.tasks <- t:
	default:
		w.running.Add()
		go w.work(t)
	}
}

// work serves t, then the tasks handed to it until it idles or is asked
// to quit.
func (w *workers) work(t task) {
	defer w.running.Done()
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

// quitting returns the channel closed when the idle workers must exit.
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
	w.running.Wait()
}

// timers recycles the timers of GetTimer.
var timers sync.Pool

// GetTimer returns a time.Timer armed to fire after d, recycled when one
// was given back by PutTimer. The caller owns it until it calls PutTimer.
func GetTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// PutTimer stops t, drains it and recycles it; t must not be used after.
func PutTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	timers.Put(t)
}
