package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"time"
)

// An election makes this process the leader of a name, for redlock elect.
// Campaign blocks until this process leads (or ctx ends, an exitError
// then) and returns a context cancelled when the leadership can no longer
// be proven; Resign gives the leadership up. Until and Token describe the
// term Campaign began.
//
// The library has no Election primitive yet: mutexLease is the election,
// the leader being the holder of a Mutex kept alive (candidates wait for
// it like any waiter, and take turns in the order they started waiting).
// An Election of the library's takes its place behind this interface.
type election interface {
	Campaign(ctx context.Context) (leading context.Context, err error)
	Until() time.Time
	Token() uint64
	Resign(quiet bool)
}

var _ election = (*mutexLease)(nil)

// respawnPause is the least time between two starts of the command with
// -respawn, so that a command that fails at once does not spin.
const respawnPause = time.Second

// electCommand is redlock elect.
func electCommand(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("elect", "redlock elect -name NAME [-value V] [-respawn] [flags] -- command [args...]", stderr)
	var srv serverFlags
	var lf lockFlags
	srv.register(fs)
	lf.register(fs, "the candidate: the `leader` shown by status and to the other candidates")
	respawn := fs.Bool("respawn", false, "when the command exits or leadership is lost, campaign again and run it again once leading")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return usageErrorf("elect: no command: redlock elect -name NAME -- command [args...]")
	}
	if err := lf.check(); err != nil {
		return err
	}
	if errPlatform != nil {
		return usageErrorf("%v", errPlatform)
	}
	s, err := srv.open(false)
	if err != nil {
		return err
	}
	defer s.close()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	campaignCtx, interrupt, cancel := waitContext(ctx, 0)
	defer cancel()
	if err := s.reach(campaignCtx, stderr, lf.quiet); err != nil {
		return err
	}
	l := &mutexLease{srv: s, flags: &lf, tries: math.MaxInt32, stderr: stderr,
		watch: newLockWatch(s, lf.name, stderr, !lf.quiet, interrupt)}
	l.watch.onChange = true
	var e election = l
	for {
		stopWatch := cancelOnSignal(interrupt, sigs)
		leading, err := e.Campaign(campaignCtx)
		stopWatch()
		if err != nil {
			return err
		}
		if err := interrupted(campaignCtx, lf.name); err != nil {
			e.Resign(lf.quiet)
			return err
		}
		if !lf.quiet {
			fmt.Fprintf(stderr, "redlock: leading %s as %s%s\n", lf.name, lf.holder, termSuffix(e.Token()))
		}
		started := time.Now()
		out, err := holdAndRun(e, leading, argv, &lf, sigs, stderr)
		switch {
		case err != nil:
			return err
		case !*respawn || out.signaled:
			if out.lost {
				return &exitError{code: exitLost}
			}
			return &exitError{code: out.code}
		case !lf.quiet && out.lost:
			fmt.Fprintf(stderr, "redlock: leadership of %s lost; campaigning again\n", lf.name)
		case !lf.quiet:
			fmt.Fprintf(stderr, "redlock: the command exited with status %d; campaigning again\n", out.code)
		}
		if pause := respawnPause - time.Since(started); pause > 0 {
			select {
			case sig := <-sigs:
				return &exitError{code: signalCause{sig}.exitCode()}
			case <-time.After(pause):
			}
		}
	}
}

// termSuffix tells the term's fencing token, if there is one.
func termSuffix(token uint64) string {
	if token == 0 {
		return ""
	}
	return fmt.Sprintf(" (term %d)", token)
}
