package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// statusCommand is redlock status: per server, what it holds of a lock.
func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "redlock status -name NAME [flags]", stderr)
	var srv serverFlags
	srv.register(fs)
	name := fs.String("name", "", "the lock's `name`")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErrorf("status: unexpected arguments %q", fs.Args())
	case *name == "":
		return usageErrorf("-name is missing: it names the lock (the key on every server)")
	}
	s, err := srv.open(false)
	if err != nil {
		return err
	}
	defer s.close()
	states := s.lockState(ctx, *name)
	now := time.Now()
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tSERVER\tHOLDER\tSINCE\tTTL\tFENCE\tLISTENING\tQUEUED")
	var failed []string
	for i, st := range states {
		if st.err != nil {
			failed = append(failed, s.describe(i, st.err))
			fmt.Fprintf(w, "#%d\t%s\t(failed, see below)\t-\t-\t-\t-\t-\n", i, s.addrs[i])
			continue
		}
		holder, since, ttl := "-", "-", "-"
		if st.value != "" {
			holder, ttl = st.value, st.ttl.Round(time.Millisecond).String()
			if h, at, ok := parseValue(st.value); ok {
				holder, since = h, fmt.Sprintf("%s (%v)", at.Format(time.TimeOnly), now.Sub(at).Round(time.Second))
			}
		}
		fmt.Fprintf(w, "#%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", i, s.addrs[i], holder, since, ttl, orDash(st.fence), st.listening, st.queued)
	}
	_ = w.Flush()
	fmt.Fprintln(stdout)
	hs := holdings(states)
	switch {
	case len(hs) == 0:
		fmt.Fprintf(stdout, "%s is free\n", *name)
	case len(hs[0].nodes) >= s.quorum():
		fmt.Fprintf(stdout, "%s is held by %s on %d of %d servers (a quorum is %d)\n", *name, describeHolder(hs[0].value, now), len(hs[0].nodes), len(s.addrs), s.quorum())
	default:
		fmt.Fprintf(stdout, "%s is held on no quorum: the most servers (%d of %d) hold %s\n", *name, len(hs[0].nodes), len(s.addrs), describeHolder(hs[0].value, now))
	}
	for _, l := range failed {
		fmt.Fprintf(stderr, "redlock: %s\n", l)
	}
	if len(s.addrs)-len(failed) < s.quorum() {
		return exitf(exitUnreachable, "%d of %d servers answered, a quorum is %d", len(s.addrs)-len(failed), len(s.addrs), s.quorum())
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
