package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// forwarded are the signals redlock passes on to the command; while it
// waits for the lock they stop the waiting.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// newFlagSet returns a flag set for the command name, whose -h prints
// synopsis and the flags.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("redlock "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nredlock -h lists the environment and the exit codes.\n")
	}
	return fs
}

// parseFlags parses args with fs; -h is a success with nothing to do
// (done true).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return true, nil
		}
		return true, &exitError{code: exitUsage} // flag printed the error and the usage
	}
	return false, nil
}

// runCommand is redlock run.
func runCommand(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("run", "redlock run -name NAME [-wait D | -try] [flags] -- command [args...]", stderr)
	var srv serverFlags
	var lf lockFlags
	srv.register(fs)
	lf.register(fs, "the `holder` shown by status and to waiters")
	wait := fs.Duration("wait", 0, "give up when the lock is not acquired within this `duration` (default: wait as long as it takes)")
	try := fs.Bool("try", false, "try once, and give up at once when the lock is taken")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	argv := fs.Args()
	switch {
	case len(argv) == 0:
		return usageErrorf("run: no command: redlock run -name NAME -- command [args...]")
	case *try && *wait != 0:
		return usageErrorf("run: -try and -wait go against each other: give one")
	case *wait < 0:
		return usageErrorf("-wait: must not be negative, got %v", *wait)
	}
	if err := lf.check(); err != nil {
		return err
	}
	if errPlatform != nil {
		return usageErrorf("%v", errPlatform)
	}
	tries := math.MaxInt32
	if *try {
		tries = 1
	}
	s, err := srv.open(false)
	if err != nil {
		return err
	}
	defer s.close()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	waitCtx, interrupt, cancel := waitContext(ctx, *wait)
	defer cancel()
	stopWatch := cancelOnSignal(interrupt, sigs)
	if err := s.reach(waitCtx, stderr, lf.quiet); err != nil {
		stopWatch()
		if ierr := interrupted(waitCtx, lf.name); ierr != nil {
			return ierr
		}
		return err
	}
	l := &mutexLease{srv: s, flags: &lf, tries: tries, stderr: stderr,
		watch: newLockWatch(s, lf.name, stderr, !lf.quiet && !*try, interrupt)}
	held, err := l.Campaign(waitCtx)
	stopWatch()
	if err != nil {
		return err
	}
	if err := interrupted(waitCtx, lf.name); err != nil {
		l.Resign(lf.quiet)
		return err
	}
	out, err := holdAndRun(l, held, argv, &lf, sigs, stderr)
	if err != nil {
		return err
	}
	if out.lost {
		return &exitError{code: exitLost}
	}
	return &exitError{code: out.code}
}

// waitContext is the context of the wait for the lock: interrupt cancels
// it with a cause (cancelOnSignal), and it ends after wait unless wait is
// 0. cancel releases it.
func waitContext(ctx context.Context, wait time.Duration) (waitCtx context.Context, interrupt context.CancelCauseFunc, cancel func()) {
	ctx, interrupt = context.WithCancelCause(ctx)
	if wait == 0 {
		return ctx, interrupt, func() { interrupt(context.Canceled) }
	}
	timed, cancelTimeout := context.WithTimeout(ctx, wait)
	return timed, interrupt, func() { cancelTimeout(); interrupt(context.Canceled) }
}

// cancelOnSignal calls interrupt with a signalCause when a signal comes
// on sigs, until the returned function is called.
func cancelOnSignal(interrupt context.CancelCauseFunc, sigs <-chan os.Signal) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case sig := <-sigs:
			interrupt(signalCause{sig})
		case <-done:
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// holdAndRun runs argv while the lease is held, then releases it.
func holdAndRun(l election, held context.Context, argv []string, lf *lockFlags, sigs <-chan os.Signal, stderr io.Writer) (outcome, error) {
	env := []string{
		"REDLOCK_NAME=" + lf.name,
		"REDLOCK_UNTIL=" + l.Until().UTC().Format(time.RFC3339Nano),
	}
	if lf.fencing {
		env = append(env, "REDLOCK_TOKEN="+strconv.FormatUint(l.Token(), 10))
	}
	c, err := startChild(argv, env)
	if err != nil {
		l.Resign(lf.quiet)
		return outcome{}, err
	}
	out := c.supervise(supervision{held: held, sigs: sigs, grace: lf.grace, stderr: stderr, quiet: lf.quiet})
	l.Resign(lf.quiet || out.lost)
	return out, nil
}
