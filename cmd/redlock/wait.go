package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/quorumlock/redsync"
)

// waitLineEvery is how often the waiting line is printed.
const waitLineEvery = 5 * time.Second

// A waitWatch prints, while a Lock waits, a line on stderr saying who
// holds the lock: after the first attempt refused, then every
// waitLineEvery. The Lock's Observer tells it of the refusals.
type waitWatch struct {
	redsync.BaseObserver
	srv     *servers
	name    string
	stderr  io.Writer
	refused chan struct{} // a refused attempt; buffered, never blocks the Lock
}

func newWaitWatch(srv *servers, name string, stderr io.Writer) *waitWatch {
	return &waitWatch{srv: srv, name: name, stderr: stderr, refused: make(chan struct{}, 1)}
}

// Attempt notes a refused attempt, without waiting.
func (w *waitWatch) Attempt(_ context.Context, e redsync.AttemptEvent) {
	if e.Acquired {
		return
	}
	select {
	case w.refused <- struct{}{}:
	default:
	}
}

// start prints the lines until the returned function is called, which
// waits for the printing to stop.
func (w *waitWatch) start(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var next time.Time
		for {
			select {
			case <-done:
				return
			case <-w.refused:
			}
			if time.Now().Before(next) {
				continue
			}
			next = time.Now().Add(waitLineEvery)
			fmt.Fprintf(w.stderr, "redlock: waiting: %s\n", w.srv.holderLine(ctx, w.name))
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
	var sig signalCause
	if errors.As(context.Cause(ctx), &sig) {
		return exitf(sig.exitCode(), "%s: stopped waiting for the lock: %v", f.name, sig)
	}
	var argErr *redsync.ArgumentError
	if errors.As(err, &argErr) {
		return usageErrorf("%v", argErr)
	}
	failed := map[int]error{}
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
	return exitf(exitNotAcquired, "not acquired (%s): %s", why, s.holderLine(context.WithoutCancel(ctx), f.name))
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
