package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
)

// waitLineEvery is how often the waiting line is printed.
const waitLineEvery = 5 * time.Second

// A lockWatch is the Observer of the Mutex while redlock waits for it. It
// stops the wait when a quorum of servers refuses an attempt with an error
// reply (NOPERM for EVAL, say), which waiting does not mend; and, when
// print is set, it prints a line on stderr saying who holds the lock,
// after the first attempt refused, then every waitLineEvery (with
// onChange, only when another value holds it: a candidate of elect may
// wait for days).
type lockWatch struct {
	redsync.BaseObserver
	srv       *servers
	name      string
	stderr    io.Writer
	print     bool
	onChange  bool
	interrupt context.CancelCauseFunc // ends the wait
	refused   chan struct{}           // a refused attempt; buffered, never blocks the Lock

	mu     sync.Mutex            // guards failed
	failed map[int]map[int]error // by attempt, the servers' error replies
}

func newLockWatch(srv *servers, name string, stderr io.Writer, print bool, interrupt context.CancelCauseFunc) *lockWatch {
	return &lockWatch{srv: srv, name: name, stderr: stderr, print: print, interrupt: interrupt,
		refused: make(chan struct{}, 1), failed: map[int]map[int]error{}}
}

// Node records a server's error reply to an attempt.
func (w *lockWatch) Node(_ context.Context, e redsync.NodeEvent) {
	var reply goredislib.Error
	if e.Op != redsync.OpLock || e.Late || e.Outcome != redsync.NodeError || !errors.As(e.Err, &reply) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed[e.Attempt] == nil {
		w.failed[e.Attempt] = map[int]error{}
	}
	w.failed[e.Attempt][e.Node] = e.Err
}

// Attempt ends the wait when a quorum refused the attempt with errors,
// and tells the printing of a refused attempt, without waiting.
func (w *lockWatch) Attempt(_ context.Context, e redsync.AttemptEvent) {
	w.mu.Lock()
	failed := w.failed[e.Attempt]
	delete(w.failed, e.Attempt)
	w.mu.Unlock()
	if e.Acquired {
		return
	}
	if len(w.srv.addrs)-len(failed) < w.srv.quorum() {
		w.interrupt(refusal{failed})
		return
	}
	select {
	case w.refused <- struct{}{}:
	default:
	}
}

// A refusal is the cause of a wait stopped by servers' error replies,
// by server.
type refusal struct{ errs map[int]error }

func (r refusal) Error() string { return fmt.Sprintf("%d servers refused the lock", len(r.errs)) }

// start prints the lines until the returned function is called, which
// waits for the printing to stop.
func (w *lockWatch) start(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var next time.Time
		var last string // the value held when the last line was printed
		printed := false
		for {
			select {
			case <-done:
				return
			case <-w.refused:
			}
			if !w.print || time.Now().Before(next) {
				continue
			}
			next = time.Now().Add(waitLineEvery)
			line, value := w.srv.holderLine(ctx, w.name)
			if w.onChange && value == last && printed {
				continue
			}
			last, printed = value, true
			fmt.Fprintf(w.stderr, "redlock: waiting: %s\n", line)
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// lockFailure is the exitError of a Lock that failed with err, waiting
// with ctx: a signal (128+N), servers unreachable or refusing, or the lock
// not acquired.
func (s *servers) lockFailure(ctx context.Context, f *lockFlags, err error) error {
	if err := interrupted(ctx, f.name); err != nil {
		return err
	}
	var argErr *redsync.ArgumentError
	if errors.As(err, &argErr) {
		return usageErrorf("%v", argErr)
	}
	failed := map[int]error{}
	var refused refusal
	if errors.As(context.Cause(ctx), &refused) {
		failed = refused.errs
	}
	eachError(err, func(e error) {
		switch re := e.(type) {
		case *redsync.RedisError:
			failed[re.Node] = re.Err
		case redsync.RedisError:
			failed[re.Node] = re.Err
		}
	})
	if len(s.addrs)-len(failed) < s.quorum() {
		var lines []string
		for i := range s.addrs {
			if e, ok := failed[i]; ok {
				lines = append(lines, s.describe(i, e))
			}
		}
		return exitf(exitUnreachable, "%s: %d of %d servers failed the lock, a quorum is %d:\n  %s",
			f.name, len(failed), len(s.addrs), s.quorum(), strings.Join(lines, "\n  "))
	}
	if errors.Is(err, redsync.ErrFenceKeyInUse) {
		return usageErrorf("%s: %v", f.name, err)
	}
	if f.quiet {
		return &exitError{code: exitNotAcquired}
	}
	why := "-try"
	if errors.Is(err, context.DeadlineExceeded) {
		why = "-wait ran out"
	}
	line, _ := s.holderLine(context.WithoutCancel(ctx), f.name)
	return exitf(exitNotAcquired, "not acquired (%s): %s", why, line)
}

// eachError calls fn for err and every error it wraps, depth first.
func eachError(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			eachError(e, fn)
		}
	case interface{ Unwrap() error }:
		eachError(u.Unwrap(), fn)
	}
}
