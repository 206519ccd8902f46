//go:build linux

package faults

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"
)

// A PrimCheck is what the checker found in the holdings of one primitive
// other than the Mutex (see the Kind constants).
type PrimCheck struct {
	Kind     string `json:"kind"`
	Holdings int    `json:"holdings"`
	// HandedOver counts the holdings that took a hand-over (an Election's
	// lock handed over by a Resign); the other primitives report none.
	HandedOver int `json:"handed_over"`
	// Lost counts the holders that found their lock gone before they
	// released it; KeepAliveLost those of them with a KeepAlive context,
	// KeepAliveCancelled those whose context ended with a cause matching
	// redsync.ErrLockLost, and KeepAliveNotCancelled lists those whose
	// context stayed live after Until (for two seconds more, or for good).
	Lost                  int          `json:"lost"`
	KeepAliveLost         int          `json:"keepalive_lost"`
	KeepAliveCancelled    int          `json:"keepalive_cancelled"`
	KeepAliveNotCancelled []HoldingRef `json:"keepalive_not_cancelled,omitempty"`
	// LateAcquires counts the acquisitions that returned at or after
	// their own Until, the process not stopped in the call.
	LateAcquires int `json:"late_acquires"`

	// Overlaps are the pairs of holders that must exclude each other and
	// whose windows (Holding.Window) intersect: for a MultiMutex, two
	// holders of overlapping name sets, a Mutex holder of one of the
	// names included; for an RWMutex, a writer and a reader or two
	// writers; for an Election, two leaders.
	Overlaps []Overlap `json:"overlaps,omitempty"`
	// Excesses are the times when a Semaphore's leases held more than
	// its permits.
	Excesses []Excess `json:"excesses,omitempty"`
	// WithMutex counts, for a MultiMutex, the holdings whose names
	// included a name that Mutex holders lock too; SharedOverlaps, for an
	// RWMutex, the pairs of readers that held at once (as they may): both
	// show that the run tested what the checker checks.
	WithMutex      int `json:"with_mutex,omitempty"`
	SharedOverlaps int `json:"shared_overlaps,omitempty"`
	// Terms counts the leaderships whose term was compared with the
	// leaderships of their election that began before, and
	// TermViolations lists those whose term was not larger than every
	// earlier one's.
	Terms          int                `json:"terms,omitempty"`
	TermViolations []FencingViolation `json:"term_violations,omitempty"`
}

// Violations counts what the primitive must never allow: overlaps,
// excesses and terms out of order.
func (p *PrimCheck) Violations() int {
	return len(p.Overlaps) + len(p.Excesses) + len(p.TermViolations)
}

// An Excess is a time when the leases of one Semaphore held more weight
// than its permits.
type Excess struct {
	Name    string `json:"name"`
	Permits int    `json:"permits"`
	// Weight is the most weight held at once in [From, To), by Holders.
	Weight  int          `json:"weight"`
	Holders []HoldingRef `json:"holders"`
	From    int64        `json:"from"`
	To      int64        `json:"to"`
	// Faults are the faults in progress from one longest expiry before
	// the first of the holders acquired to the end of the excess.
	Faults []string `json:"faults,omitempty"`
}

// Duration is how long the semaphore held too much.
func (e Excess) Duration() time.Duration { return time.Duration(e.To - e.From) }

// checkPrims checks the holdings of the other primitives; mutex are the
// Mutex holdings, which a MultiMutex must exclude on a name they share.
func checkPrims(res *CheckResult, mutex []Holding, others []Holding, faults []FaultEvent, maxTTL time.Duration) {
	byKind := map[string][]*Holding{}
	for i := range others {
		byKind[others[i].Kind] = append(byKind[others[i].Kind], &others[i])
	}
	for _, kind := range AllPrims {
		hs := byKind[kind]
		if len(hs) == 0 {
			continue
		}
		pc := PrimCheck{Kind: kind, Holdings: len(hs)}
		countPrim(&pc, hs, faults)
		switch kind {
		case KindSemaphore:
			pc.Excesses = findExcesses(hs, faults, maxTTL)
		case KindMulti:
			names := map[string]bool{}
			for _, h := range hs {
				for _, n := range h.Names {
					names[n] = true
				}
			}
			with := slices.Clone(hs)
			mutexNames := map[string]bool{}
			for i := range mutex {
				if names[mutex[i].Name] {
					with = append(with, &mutex[i])
					mutexNames[mutex[i].Name] = true
				}
			}
			for _, h := range hs {
				if slices.ContainsFunc(h.Names, func(n string) bool { return mutexNames[n] }) {
					pc.WithMutex++
				}
			}
			pc.Overlaps = pairOverlaps(with, lockedNames, func(a, b *Holding) bool {
				return a.Kind == KindMulti || b.Kind == KindMulti
			}, faults, maxTTL)
		case KindRWMutex:
			pc.Overlaps = pairOverlaps(hs, lockedNames, func(a, b *Holding) bool { return !a.Shared || !b.Shared }, faults, maxTTL)
			pc.SharedOverlaps = len(pairOverlaps(hs, lockedNames, func(a, b *Holding) bool { return a.Shared && b.Shared }, nil, maxTTL))
		case KindElection:
			pc.Overlaps = pairOverlaps(hs, lockedNames, func(a, b *Holding) bool { return true }, faults, maxTTL)
			pc.Terms, pc.TermViolations = checkTerms(hs)
		}
		res.Prims = append(res.Prims, pc)
	}
}

// countPrim counts the hand-overs, losses and late acquisitions of a
// primitive's holdings, and checks their KeepAlive contexts as
// checkKeepAlive checks the Mutex holders'.
func countPrim(pc *PrimCheck, hs []*Holding, faults []FaultEvent) {
	for _, h := range hs {
		if h.HandedOver {
			pc.HandedOver++
		}
		if h.Acquired >= h.Until && !pausedDuring(faults, h.Client, h.LockStart, h.Acquired) {
			pc.LateAcquires++
		}
		if h.Lost == nil {
			continue
		}
		pc.Lost++
		if h.Mode != ModeKeepAlive {
			continue
		}
		pc.KeepAliveLost++
		switch {
		case h.Lost.CauseLockLost:
			pc.KeepAliveCancelled++
		case h.Lost.CtxDone == 0:
			pc.KeepAliveNotCancelled = append(pc.KeepAliveNotCancelled, refOf(h))
		}
	}
}

// lockedNames returns the names a holding locked: a MultiMutex's Names,
// the one Name of the others.
func lockedNames(h *Holding) []string {
	if len(h.Names) > 0 {
		return h.Names
	}
	return []string{h.Name}
}

// pairOverlaps sweeps the windows of the holdings by name (keys gives the
// names each locked) in order of their start, and returns every pair of
// holdings that conflict whose windows intersect on a name, once per
// pair.
func pairOverlaps(holdings []*Holding, keys func(*Holding) []string, conflict func(a, b *Holding) bool, faults []FaultEvent, maxTTL time.Duration) []Overlap {
	type interval struct {
		from, to int64
		h        int // index in holdings
	}
	byName := map[string][]interval{}
	for i, h := range holdings {
		for _, w := range h.Window() {
			for _, name := range keys(h) {
				byName[name] = append(byName[name], interval{w[0], w[1], i})
			}
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []Overlap
	seen := map[[2]int]bool{}
	for _, name := range names {
		ivs := byName[name]
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].from < ivs[j].from })
		var active []interval // intervals that may still overlap the next
		for _, iv := range ivs {
			kept := active[:0]
			for _, a := range active {
				if a.to > iv.from {
					kept = append(kept, a)
				}
			}
			active = kept
			for _, a := range active {
				pair := [2]int{a.h, iv.h}
				if pair[0] > pair[1] {
					pair[0], pair[1] = pair[1], pair[0]
				}
				ha, hb := holdings[a.h], holdings[iv.h]
				if a.h == iv.h || seen[pair] || !conflict(ha, hb) {
					continue
				}
				seen[pair] = true
				to := min(iv.to, a.to)
				if hb.Acquired < ha.Acquired {
					ha, hb = hb, ha
				}
				out = append(out, Overlap{
					Name: name, A: refOf(ha), B: refOf(hb), From: iv.from, To: to,
					Faults:  faultsDuring(faults, ha.Acquired-int64(maxTTL), to),
					Fencing: fencingVerdict(ha, hb),
				})
			}
			active = append(active, iv)
		}
	}
	return out
}

// findExcesses sweeps the starts and ends of the leases' windows of each
// semaphore in time order, adding and removing their weights, and returns
// every stretch in which the weight held exceeded the permits (each
// holding's record says its semaphore's permits; the smallest counts).
func findExcesses(hs []*Holding, faults []FaultEvent, maxTTL time.Duration) []Excess {
	type event struct {
		at     int64
		weight int // positive at a window's start, negative at its end
		h      *Holding
	}
	byName := map[string][]event{}
	permits := map[string]int{}
	for _, h := range hs {
		if p, ok := permits[h.Name]; !ok || h.Permits < p {
			permits[h.Name] = h.Permits
		}
		for _, w := range h.Window() {
			byName[h.Name] = append(byName[h.Name], event{w[0], h.Weight, h}, event{w[1], -h.Weight, h})
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []Excess
	for _, name := range names {
		evs := byName[name]
		// Windows are [from, to): at one instant ends come before starts.
		slices.SortFunc(evs, func(a, b event) int {
			if c := cmp.Compare(a.at, b.at); c != 0 {
				return c
			}
			return cmp.Compare(a.weight, b.weight)
		})
		held := 0
		active := map[*Holding]int{} // the holdings in a window now, and how many of their windows
		var cur *Excess
		var involved map[*Holding]bool
		for _, ev := range evs {
			held += ev.weight
			if ev.weight > 0 {
				active[ev.h]++
			} else if active[ev.h]--; active[ev.h] == 0 {
				delete(active, ev.h)
			}
			switch {
			case held > permits[name] && cur == nil:
				cur = &Excess{Name: name, Permits: permits[name], From: ev.at}
				involved = map[*Holding]bool{}
				fallthrough
			case held > permits[name]:
				cur.Weight = max(cur.Weight, held)
				for h := range active {
					involved[h] = true
				}
			case cur != nil:
				cur.To = ev.at
				first := cur.To
				for h := range involved {
					cur.Holders = append(cur.Holders, refOf(h))
					first = min(first, h.Acquired)
				}
				slices.SortFunc(cur.Holders, func(a, b HoldingRef) int { return cmp.Compare(a.Acquired, b.Acquired) })
				cur.Faults = faultsDuring(faults, first-int64(maxTTL), cur.To)
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	return out
}

// checkTerms checks the terms of an election's leaderships: each must be
// larger than the term of every leadership of the election that began
// before (by the start of its window; a leadership whose window is empty,
// its Campaign having returned after its Until, never began). It returns
// how many leaderships had an earlier one, and the violations: the
// leadership and, of the earlier ones, the one with the largest term.
func checkTerms(hs []*Holding) (int, []FencingViolation) {
	type leadership struct {
		start int64
		h     *Holding
	}
	byName := map[string][]leadership{}
	for _, h := range hs {
		if w := h.Window(); len(w) > 0 {
			byName[h.Name] = append(byName[h.Name], leadership{w[0][0], h})
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	compared := 0
	var out []FencingViolation
	for _, name := range names {
		ls := byName[name]
		slices.SortFunc(ls, func(a, b leadership) int { return cmp.Compare(a.start, b.start) })
		var top *Holding
		for _, l := range ls {
			if top != nil {
				compared++
				if termOf(l.h) <= termOf(top) {
					out = append(out, FencingViolation{Name: name, Earlier: refOf(top), Later: refOf(l.h)})
					continue
				}
			}
			if top == nil || termOf(l.h) > termOf(top) {
				top = l.h
			}
		}
	}
	return compared, out
}

// termOf is a leader's term, 0 when it recorded none.
func termOf(h *Holding) uint64 {
	if h.Token == nil {
		return 0
	}
	return *h.Token
}

// primViolations describes the violations of the primitives for
// Report.Failures: those that overlap or exceed (tolerated when
// tolerate is set, as the Mutex's overlaps are with faults that break
// Redlock's assumptions) and those that are never tolerated (terms out
// of order, KeepAlive contexts not cancelled).
func (r *CheckResult) primViolations(tolerate bool) []string {
	var out []string
	for i := range r.Prims {
		p := &r.Prims[i]
		if n := len(p.Overlaps) + len(p.Excesses); n > 0 && !tolerate {
			out = append(out, fmt.Sprintf("%d %s holders held together what they must not", n, p.Kind))
		}
		if n := len(p.TermViolations); n > 0 {
			out = append(out, fmt.Sprintf("%d %s leaderships whose term was not larger than an earlier one's", n, p.Kind))
		}
		if n := len(p.KeepAliveNotCancelled); n > 0 {
			out = append(out, fmt.Sprintf("%d %s KeepAlive contexts not cancelled after the lock was lost", n, p.Kind))
		}
	}
	return out
}

// primBroken counts the overlaps and excesses of the other primitives.
func (r *CheckResult) primBroken() int {
	n := 0
	for i := range r.Prims {
		n += len(r.Prims[i].Overlaps) + len(r.Prims[i].Excesses)
	}
	return n
}

// primBrokenNote says how many of the other primitives' holders held
// together what they must not, "" when none did.
func (r *CheckResult) primBrokenNote() string {
	if n := r.primBroken(); n > 0 {
		return fmt.Sprintf(" and %d of the other primitives' (overlaps, semaphores over their permits)", n)
	}
	return ""
}
