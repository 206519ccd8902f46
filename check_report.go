package redsync

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// finish adds what only the servers together tell (two pools on one
// server) and orders every server's findings, problems first.
func (r *Report) finish() {
	first := map[string]int{}
	for i := range r.Servers {
		s := &r.Servers[i]
		if s.RunID == "" {
			continue
		}
		j, seen := first[s.RunID]
		if !seen {
			first[s.RunID] = i
			continue
		}
		s.add(FindingSameServer, nil, "the pool reaches the same server as node #%d (run_id %s): one server counts as two of the quorum's votes; give each pool a server of its own", j, s.RunID)
	}
	for i := range r.Servers {
		f := r.Servers[i].Findings
		sort.SliceStable(f, func(a, b int) bool {
			if wa, wb := f[a].Kind.Warning(), f[b].Kind.Warning(); wa != wb {
				return wb
			}
			return f[a].Kind < f[b].Kind
		})
	}
}

// Findings returns every server's findings, in the order of the servers.
func (r *Report) Findings() []Finding {
	var all []Finding
	for _, s := range r.Servers {
		all = append(all, s.Findings...)
	}
	return all
}

// Err returns the findings joined with errors.Join (each one a Finding,
// for errors.As), leaving out the warnings whose kind is among
// acknowledged: a program that keeps restarted servers out for the
// longest expiry acknowledges FindingNoPersistence, say. Problems cannot
// be acknowledged. Err returns nil when nothing is left.
func (r *Report) Err(acknowledged ...FindingKind) error {
	var errs []error
	for _, f := range r.Findings() {
		if f.Kind.Warning() && containsKind(acknowledged, f.Kind) {
			continue
		}
		errs = append(errs, f)
	}
	return errors.Join(errs...)
}

func containsKind(kinds []FindingKind, k FindingKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// String returns the report as a table: a line per finding (a line with
// "ok" for a server without any), with the server's node, version, role,
// run_id (its first 8 characters), clock offset and round trip, and the
// finding's level, kind and detail.
func (r *Report) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tVERSION\tROLE\tRUN ID\tCLOCK\tLEVEL\tFINDING")
	for _, s := range r.Servers {
		server := fmt.Sprintf("#%d\t%s\t%s\t%s\t%s", s.Node, orDash(s.Version), orDash(s.Role), orDash(shortID(s.RunID)), clockColumn(s))
		if len(s.Findings) == 0 {
			fmt.Fprintf(w, "%s\t-\tok\n", server)
		}
		for _, f := range s.Findings {
			level := "problem"
			if f.Kind.Warning() {
				level = "warning"
			}
			fmt.Fprintf(w, "%s\t%s\t%s: %s\n", server, level, f.Kind, f.Detail)
		}
	}
	_ = w.Flush()
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// clockColumn shows the clock offset and the round trip it was measured
// in, "+0.2ms/0.1ms", or "-" when the clock was not read.
func clockColumn(s ServerReport) string {
	if s.RTT == 0 && s.ClockOffset == 0 {
		return "-"
	}
	sign := "+"
	if s.ClockOffset < 0 {
		sign = "-"
	}
	return fmt.Sprintf("%s%v/%v", sign, roundDuration(s.ClockOffset.Abs()), roundDuration(s.RTT))
}

// roundDuration keeps two or three significant digits.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
