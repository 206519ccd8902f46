package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/quorumlock/redsync"
)

// checkTimeout bounds redlock check.
const checkTimeout = 10 * time.Second

// checkCommand is redlock check: the library's preflight (Redsync.Check),
// as a table.
func checkCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "redlock check [flags]", stderr)
	var srv serverFlags
	srv.register(fs)
	expiry := fs.Duration("expiry", 8*time.Second, "the expiry the locks are taken with: the clocks are held to 1% of it")
	fencing := fs.Bool("fencing", false, "the locks are taken with -fencing")
	ack := fs.String("ack", "", "warnings to accept, comma-separated `kinds` (no-persistence, failover, unverified): they are shown but do not fail the check")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("check: unexpected arguments %q", fs.Args())
	}
	acks, err := parseKinds(*ack)
	if err != nil {
		return err
	}
	s, err := srv.open(true)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	report, err := s.rs.Check(ctx, redsync.WithExpiry(*expiry), redsync.WithFencing(*fencing))
	if err != nil {
		return usageErrorf("check: %v", err)
	}
	// The table names servers by node: say which is which.
	for i, addr := range s.addrs {
		fmt.Fprintf(stdout, "#%d  %s\n", i, addr)
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, report.String())
	var problems, warnings, accepted int
	for _, f := range report.Findings() {
		switch {
		case !f.Kind.Warning():
			problems++
		case containsKind(acks, f.Kind):
			accepted++
		default:
			warnings++
		}
	}
	fmt.Fprintf(stdout, "\n%d problems, %d warnings, %d warnings accepted with -ack\n", problems, warnings, accepted)
	if report.Err(acks...) != nil {
		return &exitError{code: exitFindings}
	}
	return nil
}

// parseKinds parses -ack.
func parseKinds(list string) ([]redsync.FindingKind, error) {
	var kinds []redsync.FindingKind
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		k, ok := kindNamed(name)
		switch {
		case !ok:
			return nil, usageErrorf("-ack: no finding is called %q; the warnings are no-persistence, failover and unverified", name)
		case !k.Warning():
			return nil, usageErrorf("-ack: %s is a problem, not a warning: it cannot be accepted", name)
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// kindNamed is the FindingKind whose String is name.
func kindNamed(name string) (redsync.FindingKind, bool) {
	for k := redsync.FindingKind(1); k < 64; k++ {
		if s := k.String(); s == name {
			return k, true
		} else if strings.HasPrefix(s, "FindingKind(") {
			break
		}
	}
	return 0, false
}

func containsKind(kinds []redsync.FindingKind, k redsync.FindingKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}
