package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/quorumlock/redsync"
)

// lockFlags are the flags of the lock that run and elect hold.
type lockFlags struct {
	name    string
	holder  string
	expiry  time.Duration
	grace   time.Duration
	fencing bool
	quiet   bool
}

// register adds the flags to fs; holderUse tells what -value is for.
func (f *lockFlags) register(fsFlags *flag.FlagSet, holderUse string) {
	fsFlags.StringVar(&f.name, "name", "", "the lock's `name`: the key on every server")
	fsFlags.StringVar(&f.holder, "value", "", holderUse+" (default host:pid); a random part is added to every acquisition's value")
	fsFlags.DurationVar(&f.expiry, "expiry", 8*time.Second, "the lock's expiry, renewed every third of it while the command runs")
	fsFlags.DurationVar(&f.grace, "grace", 10*time.Second, "once the lock is lost, the time from SIGTERM to SIGKILL")
	fsFlags.BoolVar(&f.fencing, "fencing", false, "give the command a fencing token in $REDLOCK_TOKEN")
	fsFlags.BoolVar(&f.quiet, "quiet", false, "print nothing while waiting, nor when the lock is not acquired")
}

// check tells what is wrong with the flags, if anything.
func (f *lockFlags) check() error {
	switch {
	case f.name == "":
		return usageErrorf("-name is missing: it names the lock (the key on every server)")
	case f.expiry < 100*time.Millisecond:
		return usageErrorf("-expiry: at least 100ms, got %v", f.expiry)
	case f.grace < 0:
		return usageErrorf("-grace: must not be negative, got %v", f.grace)
	}
	if f.holder == "" {
		f.holder = defaultHolder()
	}
	return checkHolder(f.holder)
}

// options are the Mutex options of the flags, for a lock tried tries
// times.
func (f *lockFlags) options(tries int, extra ...redsync.Option) []redsync.Option {
	return append([]redsync.Option{
		redsync.WithExpiry(f.expiry),
		redsync.WithTries(tries),
		redsync.WithFencing(f.fencing),
		redsync.WithGenValueFunc(valueMaker(f.holder)),
	}, extra...)
}

// A mutexLease is a lock held on the servers with a Mutex, kept alive
// from its acquisition until its release. It is the election of elect
// too, until the library has one of its own.
type mutexLease struct {
	srv    *servers
	flags  *lockFlags
	tries  int
	watch  *lockWatch // the Observer of the wait
	stderr io.Writer
	m      *redsync.Mutex // the Mutex of the latest Campaign
}

// Campaign acquires the lock, waiting until ctx ends, and keeps it alive.
// It returns the holder's context, cancelled when the lock can no longer
// be proven held. A failure is an exitError.
func (l *mutexLease) Campaign(ctx context.Context) (context.Context, error) {
	stop := l.watch.start(ctx)
	defer stop()
	l.m = l.srv.rs.NewMutex(l.flags.name, l.flags.options(l.tries, redsync.WithObserver(l.watch))...)
	if err := l.m.LockContext(ctx); err != nil {
		return nil, l.srv.lockFailure(ctx, l.flags, err)
	}
	// Kept alive until Resign: not cut short by ctx, whose end only
	// stops the waiting.
	held, err := l.m.KeepAlive(context.WithoutCancel(ctx))
	if err != nil {
		l.Resign(true)
		return nil, exitf(exitLost, "%s: the lock was lost at once: %v", l.flags.name, err)
	}
	return held, nil
}

// Until is when the lock expires unless it is extended.
func (l *mutexLease) Until() time.Time { return l.m.Until() }

// Token is the lock's fencing token, 0 without -fencing.
func (l *mutexLease) Token() uint64 { return l.m.Token() }

// releaseTimeout bounds a release.
const releaseTimeout = 5 * time.Second

// Resign releases the lock; a failure is printed unless quiet (the key
// then lapses at its expiry).
func (l *mutexLease) Resign(quiet bool) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if _, err := l.m.UnlockContext(ctx); err != nil && !quiet {
		fmt.Fprintf(l.stderr, "redlock: releasing %s: %v (the key lapses at its expiry)\n", l.flags.name, err)
	}
}

// interrupted returns the exitError of a wait that a signal cancelled,
// or nil: a signal that came as the lock was acquired stops redlock too.
func interrupted(ctx context.Context, name string) error {
	var sig signalCause
	if errors.As(context.Cause(ctx), &sig) {
		return exitf(sig.exitCode(), "%s: stopped waiting for the lock: %v", name, sig)
	}
	return nil
}

// signalCause is the cause of a context cancelled by a signal.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return "received " + s.sig.String() }

// exitCode is 128+N for signal N.
func (s signalCause) exitCode() int {
	if n, ok := s.sig.(syscall.Signal); ok {
		return exitSignal(n)
	}
	return exitSignal(syscall.SIGTERM)
}
