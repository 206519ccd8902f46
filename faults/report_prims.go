//go:build linux

package faults

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// writePrims writes the part of the summary about the other primitives:
// per primitive its operations, what the checker found, and the details
// of every violation.
func (r *Report) writePrims(w io.Writer, row func(label string, v any, note string)) {
	if len(r.Prims) == 0 && len(r.Check.Prims) == 0 {
		return
	}
	fmt.Fprintf(w, "\nother primitives (%d goroutines per client: %s)\n", r.PrimWorkers, strings.Join(r.Prims, ", "))
	orphans := map[string]int{}
	for _, o := range r.Orphans {
		orphans[primOfKey(o.Key)]++
	}
	for i := range r.Check.Prims {
		p := &r.Check.Prims[i]
		ops := PrimOps{}
		if o := r.Ops.Prims[p.Kind]; o != nil {
			ops = *o
		}
		fmt.Fprintf(w, "%s\n", p.Kind)
		row("acquisitions", fmt.Sprintf("%d/%d", ops.Acquired, ops.Calls), fmt.Sprintf("acquired / tried; %d extensions (%d failed), %d releases (%d with an error)",
			ops.Extends, ops.ExtendFailed, ops.Releases, ops.ReleaseFailed))
		row("holdings checked", p.Holdings, fmt.Sprintf("%d hand-overs; %d late (returned at or after their own Until, not paused)", p.HandedOver, p.LateAcquires))
		row("lost before release", p.Lost, fmt.Sprintf("with KeepAlive %d: cancelled with ErrLockLost %d, not cancelled %d", p.KeepAliveLost, p.KeepAliveCancelled, len(p.KeepAliveNotCancelled)))
		switch p.Kind {
		case KindSemaphore:
			row("violations", p.Violations(), "times more than the permits were held")
		case KindMulti:
			row("violations", p.Violations(), fmt.Sprintf("pairs of holders of overlapping name sets (Mutex holders included) at once; %d holdings included a Mutex name", p.WithMutex))
		case KindRWMutex:
			row("violations", p.Violations(), fmt.Sprintf("reader-writer or writer-writer pairs at once; %d reader pairs shared", p.SharedOverlaps))
		case KindElection:
			row("violations", p.Violations(), fmt.Sprintf("%d pairs of leaders at once; %d terms not larger than an earlier leader's (%d compared)",
				len(p.Overlaps), len(p.TermViolations), p.Terms))
		}
		row("orphan keys", orphans[p.Kind], "")
	}
	for i := range r.Check.Prims {
		r.writePrimDetails(w, &r.Check.Prims[i])
	}
}

// writePrimDetails lists a primitive's violations, the longest first.
func (r *Report) writePrimDetails(w io.Writer, p *PrimCheck) {
	if len(p.Overlaps) > 0 {
		fmt.Fprintf(w, "\n%s overlaps (%d):\n", p.Kind, len(p.Overlaps))
		sorted := append([]Overlap(nil), p.Overlaps...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Duration() > sorted[j].Duration() })
		for i, o := range sorted {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more in %s/report.json\n", len(sorted)-i, r.Dir)
				break
			}
			fmt.Fprintf(w, "  %s: %v from %d, %s and %s; faults around: %s\n", o.Name, o.Duration().Round(time.Microsecond), o.From, o.A, o.B, strings.Join(o.Faults, "; "))
		}
	}
	if len(p.Excesses) > 0 {
		fmt.Fprintf(w, "\n%s held over its permits (%d):\n", p.Kind, len(p.Excesses))
		for i, e := range p.Excesses {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more in %s/report.json\n", len(p.Excesses)-i, r.Dir)
				break
			}
			holders := make([]string, len(e.Holders))
			for j, h := range e.Holders {
				holders[j] = h.String()
			}
			fmt.Fprintf(w, "  %s: weight %d of %d permits for %v from %d, by %s; faults around: %s\n", e.Name, e.Weight, e.Permits,
				e.Duration().Round(time.Microsecond), e.From, strings.Join(holders, ", "), strings.Join(e.Faults, "; "))
		}
	}
	for i, v := range p.TermViolations {
		if i == 20 {
			fmt.Fprintf(w, "  ... %d more in %s/report.json\n", len(p.TermViolations)-i, r.Dir)
			break
		}
		if i == 0 {
			fmt.Fprintf(w, "\n%s terms out of order (%d): the later leadership began after the earlier\n", p.Kind, len(p.TermViolations))
		}
		fmt.Fprintf(w, "  %s: earlier %s, led from %d; later %s, led from %d\n", v.Name, v.Earlier, v.Earlier.Acquired, v.Later, v.Later.Acquired)
	}
}

// primOfKey tells which primitive's holders use a key (by the names in
// prims.go); KindMutex for the others.
func primOfKey(key string) string {
	for _, p := range []struct{ prefix, kind string }{
		{"faults:sem:", KindSemaphore}, {"faults:multi:", KindMulti}, {"faults:rw:", KindRWMutex}, {"faults:leader:", KindElection},
	} {
		if strings.Contains(key, p.prefix) {
			return p.kind
		}
	}
	return KindMutex
}
