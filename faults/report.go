//go:build linux

package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Failures lists what the run shows wrong: overlaps (unless the run
// injected FaultRestartNow or FaultEviction, which are expected to cause
// them), orphan keys,
// leaked goroutines, KeepAlive contexts not cancelled, fencing tokens out
// of order (even with FaultRestartNow: the servers' clocks, one clock on
// this host, are the tokens' floor across a restart), and problems with
// the run itself. An empty list is a pass.
func (r *Report) Failures() []string {
	var out []string
	if n := len(r.Check.Overlaps); n > 0 && r.breakingFaults() == "" {
		out = append(out, fmt.Sprintf("%d overlapping holders", n))
	}
	if n := len(r.Orphans); n > 0 {
		out = append(out, fmt.Sprintf("%d orphan keys", n))
	}
	if n := r.LeakedGoroutines(); n > 0 {
		out = append(out, fmt.Sprintf("%d leaked goroutines", n))
	}
	if n := len(r.Check.KeepAliveNotCancelled); n > 0 {
		out = append(out, fmt.Sprintf("%d KeepAlive contexts not cancelled after the lock was lost", n))
	}
	if n := len(r.Check.FencingViolations); n > 0 {
		out = append(out, fmt.Sprintf("%d fencing tokens not larger than a definitely earlier holder's", n))
	}
	out = append(out, r.Check.primViolations(r.breakingFaults() != "")...)
	for _, p := range r.Problems {
		out = append(out, "run problem: "+p)
	}
	return out
}

// WriteTable writes the summary: lock operations, faults injected by
// kind, and what the checker found, with the details of each finding.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\nfault suite: seed %d, faults for %v, wall %v\n", r.Seed, r.Duration, r.Wall.Round(time.Second))
	fmt.Fprintf(w, "%d redis-servers behind toxiproxy; %d client processes × %d goroutines (%d fast, %d slow); %d names; expiries %s\n\n",
		r.Servers, r.Clients, r.FastWorkers+r.SlowWorkers, r.FastWorkers, r.SlowWorkers, r.Names, joinDurations(r.Expiries))
	row := func(label string, v any, note string) { fmt.Fprintf(w, "  %-22s %9v  %s\n", label, v, note) }
	heading := func(title string) { fmt.Fprintf(w, "%s\n", title) }
	heading("lock operations")
	ops := r.Ops
	row("Lock calls", ops.LockCalls, "")
	row("acquired", ops.Acquired, "")
	row("not acquired", ops.LockFailed, "taken, or no quorum before the Lock timeout")
	row("Extend calls", ops.ExtendCalls, fmt.Sprintf("%d failed", ops.ExtendFailed))
	row("Unlock calls", ops.Unlocks, fmt.Sprintf("%d reported no quorum (lock expired, server unreachable)", ops.UnlockFailed))
	row("KeepAlive holders", ops.KeepAlives, "")
	row("handed over", ops.HandedOver, "acquired from a releasing Unlock (fenced names too)")
	row("requests not sent", ops.NotSent, "to a backlogged server (ErrBacklogged)")
	row("total operations", ops.LockCalls+ops.ExtendCalls+ops.Unlocks, "Lock + Extend + Unlock")
	fmt.Fprintln(w)
	heading("faults injected")
	total := 0
	for _, kind := range AllFaults {
		n, ok := r.Faults[kind]
		if !ok && !contains(r.FaultKinds, kind) {
			row(kind, "-", "not enabled")
			continue
		}
		total += n
		row(kind, n, faultNote(kind))
	}
	row("total", total, "")
	fmt.Fprintln(w)
	c := r.Check
	heading("checker")
	row("holdings checked", c.Holdings, "")
	row("hand-overs", c.HandedOver, fmt.Sprintf("%d from a holder in another client process", c.HandedAcross))
	note := ""
	if kinds := r.breakingFaults(); kinds != "" {
		note = kinds + " injected: overlaps are expected"
	}
	row("overlapping holders", len(c.Overlaps), note)
	row("orphan keys", len(r.Orphans), "after every client unlocked and waited")
	row("leaked goroutines", r.LeakedGoroutines(), "after Wait and closing the clients")
	row("Lock returned late", c.LateLocks, fmt.Sprintf("success returned at or after its own Until; slowest return %v after the attempt began", c.MaxLockReturn.Round(time.Millisecond)))
	row("slow Unlock", c.SlowUnlocks, fmt.Sprintf("Unlock calls over %v (not paused); slowest %v", slowUnlock, c.MaxUnlock.Round(time.Millisecond)))
	row("KeepAlive lost", c.KeepAliveLost, fmt.Sprintf("context cancelled with ErrLockLost: %d; KeepAlive refused (Lock late): %d; not cancelled: %d",
		c.KeepAliveCancelled, c.KeepAliveRefused, len(c.KeepAliveNotCancelled)))
	row("KeepAlive late", c.KeepAliveLate, fmt.Sprintf("context ended after Until (not paused); worst %v", c.MaxKeepAliveLate.Round(time.Microsecond)))
	row("paused past validity", c.PausedPastValidity, fmt.Sprintf("noticed on resume: %d; lock taken by another meanwhile: %d", c.PausedNoticed, c.Superseded))
	row("  with KeepAlive", c.PausedKeepAlive, fmt.Sprintf("context cancelled with ErrLockLost: %d", c.PausedKeepAliveCancelled))
	row("fencing violations", len(c.FencingViolations), c.Fencing)
	r.writePrims(w, row)
	r.writeClock(row)

	if len(c.Overlaps) > 0 {
		fmt.Fprintf(w, "\noverlaps (%d):\n", len(c.Overlaps))
		sorted := append([]Overlap(nil), c.Overlaps...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Duration() > sorted[j].Duration() })
		for i, o := range sorted {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more in %s/report.json\n", len(sorted)-i, r.Dir)
				break
			}
			fencing := ""
			if o.Fencing != "" {
				fencing = "; fencing tokens " + o.Fencing
			}
			fmt.Fprintf(w, "  %s: %v, %s and %s%s; faults around: %s\n", o.Name, o.Duration().Round(time.Microsecond), o.A, o.B, fencing, strings.Join(o.Faults, "; "))
		}
	}
	if len(c.FencingViolations) > 0 {
		fmt.Fprintf(w, "\nfencing violations (%d): the later holder's Lock was called after the earlier's returned\n", len(c.FencingViolations))
		for i, v := range c.FencingViolations {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more in %s/report.json\n", len(c.FencingViolations)-i, r.Dir)
				break
			}
			fmt.Fprintf(w, "  %s: earlier %s, Lock returned at %d; later %s, Lock called at %d\n", v.Name, v.Earlier, v.Earlier.Acquired, v.Later, v.Later.LockStart)
		}
	}
	if len(r.Orphans) > 0 {
		fmt.Fprintf(w, "\norphan keys (%d):\n", len(r.Orphans))
		for _, o := range r.Orphans {
			holder := "a value no holder recorded (a failed try's)"
			switch {
			case o.Holder != nil:
				holder = o.Holder.String()
			case o.Placeholder:
				holder = "the hand-off placeholder, not expired"
			}
			fmt.Fprintf(w, "  server %d %s = %q, ttl %d ms, %s\n", o.Server, o.Key, o.Value, o.PTTL, holder)
		}
	}
	for _, l := range r.Leaks {
		fmt.Fprintf(w, "\nclient %d leaked %d goroutines (Wait stuck: %v, took %.1fs):\n%s\n", l.Client, l.LeakedGoroutines, l.WaitStuck, l.WaitSeconds, firstLines(l.Leaks, 60))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "\nrun problem: %s\n", p)
	}
	switch f := r.Failures(); {
	case len(f) > 0:
		fmt.Fprintf(w, "\nFAIL: %s\n", strings.Join(f, "; "))
	case len(c.Overlaps)+c.primBroken() > 0:
		fmt.Fprintf(w, "\nPASS: no orphan, no leak%s; %d overlaps%s, as expected with %s\n", r.fencingPass(), len(c.Overlaps), c.primBrokenNote(), r.breakingFaults())
	default:
		fmt.Fprintf(w, "\nPASS: no overlap, no orphan, no leak%s\n", r.fencingPass())
	}
}

// breakingFaults names the fault kinds of the run that break Redlock's
// assumptions (FaultRestartNow, FaultEviction), "" when there are none.
func (r *Report) breakingFaults() string {
	var kinds []string
	for _, kind := range []string{FaultRestartNow, FaultEviction} {
		if contains(r.FaultKinds, kind) {
			kinds = append(kinds, kind)
		}
	}
	if r.Clock != nil && r.Clock.Beyond {
		kinds = append(kinds, "clock faults beyond the drift allowance")
	}
	return strings.Join(kinds, " and ")
}

// fencingPass is what a passing run says of fencing tokens.
func (r *Report) fencingPass() string {
	if r.Check.FencingHoldings == 0 {
		return ""
	}
	return ", fencing tokens in order"
}

func faultNote(kind string) string {
	switch kind {
	case FaultPauseShort:
		return "server SIGSTOP, shorter than the shortest expiry"
	case FaultPauseLong:
		return "server SIGSTOP, longer than the longest expiry"
	case FaultRestartNow:
		return "(a) server killed, restarted empty at once"
	case FaultRestartDelayed:
		return "(b) server killed, restarted empty after the longest expiry"
	case FaultLatency:
		return "latency on 1-2 links, below and above the per-server deadline"
	case FaultTimeout:
		return "one link's traffic dropped in one direction, connections closed"
	case FaultPartition:
		return "2 of the servers cut off, connections left hanging"
	case FaultClientPause:
		return "client process SIGSTOP, longer than the longest expiry"
	case FaultEviction:
		return "a majority of servers evict keys (tiny maxmemory, other writes)"
	}
	return clockFaultNote(kind)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines[n] = "..."
	}
	return strings.Join(lines, "\n")
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
