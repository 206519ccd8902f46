//go:build linux

package faults

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A HoldingRef names a holding in a report.
type HoldingRef struct {
	Client    int      `json:"client"`
	Worker    int      `json:"worker"`
	Seq       int      `json:"seq"`
	Mode      string   `json:"mode"`
	Kind      string   `json:"kind,omitempty"`
	Names     []string `json:"names,omitempty"`
	Weight    int      `json:"weight,omitempty"`
	Shared    bool     `json:"shared,omitempty"`
	Value     string   `json:"value"`
	LockStart int64    `json:"lock_start,omitempty"`
	Acquired  int64    `json:"acquired"`
	End       int64    `json:"end"`             // when its validity window ended
	Token     *uint64  `json:"token,omitempty"` // its fencing token, if it used fencing
}

func refOf(h *Holding) HoldingRef {
	return HoldingRef{Client: h.Client, Worker: h.Worker, Seq: h.Seq, Mode: h.Mode, Value: h.Value,
		Kind: h.Kind, Names: h.Names, Weight: h.Weight, Shared: h.Shared,
		LockStart: h.LockStart, Acquired: h.Acquired, End: h.End(), Token: h.Token}
}

func (r HoldingRef) String() string {
	how := r.Mode
	switch {
	case r.Kind == KindMulti:
		how = fmt.Sprintf("multimutex %s, %s", strings.Join(r.Names, "+"), r.Mode)
	case r.Kind == KindSemaphore:
		how = fmt.Sprintf("semaphore weight %d, %s", r.Weight, r.Mode)
	case r.Kind == KindRWMutex && r.Shared:
		how = "rwmutex reader"
	case r.Kind == KindRWMutex:
		how = "rwmutex writer"
	case r.Kind == KindElection && r.Token != nil:
		return fmt.Sprintf("client %d worker %d #%d (leader, term %d)", r.Client, r.Worker, r.Seq, *r.Token)
	}
	if r.Token != nil {
		return fmt.Sprintf("client %d worker %d #%d (%s, token %d)", r.Client, r.Worker, r.Seq, how, *r.Token)
	}
	return fmt.Sprintf("client %d worker %d #%d (%s)", r.Client, r.Worker, r.Seq, how)
}

// An Overlap is a time when two holders of one name both held the lock by
// their own account: the one thing a lock must never allow.
type Overlap struct {
	Name string     `json:"name"`
	A    HoldingRef `json:"a"` // the earlier holder
	B    HoldingRef `json:"b"`
	// From and To bound the overlap (CLOCK_MONOTONIC nanoseconds).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Faults are the faults in progress from one longest expiry before
	// the earlier holder acquired to the end of the overlap.
	Faults []string `json:"faults,omitempty"`
	// Fencing tells whether fencing tokens would have kept the earlier
	// holder's writes out once the later one wrote: FencingOrdered when
	// B's Lock began after A's returned and B's token is larger,
	// FencingInverted when B's Lock began after A's returned yet B's
	// token is not larger, FencingUndetermined when the two Lock calls
	// overlapped in time (the records cannot tell which acquired first),
	// "" without tokens.
	Fencing string `json:"fencing,omitempty"`
}

// Fencing verdicts of an Overlap.
const (
	FencingOrdered      = "ordered"
	FencingInverted     = "inverted"
	FencingUndetermined = "undetermined"
)

// Duration is how long the two holders overlapped.
func (o Overlap) Duration() time.Duration { return time.Duration(o.To - o.From) }

// CheckResult is what the checker found in the holdings of a run.
type CheckResult struct {
	Holdings int `json:"holdings"`
	// HandedOver counts the holdings that were hand-overs, and
	// HandedAcross those of them whose previous holder of the name (by
	// Acquired) was in another client process.
	HandedOver   int `json:"handed_over"`
	HandedAcross int `json:"handed_across"`
	// Overlaps lists every pair of holders of one name whose validity
	// windows (Holding.Window) overlap.
	Overlaps []Overlap `json:"overlaps"`

	// KeepAliveLost counts the holders using KeepAlive that lost the lock
	// before Unlock; KeepAliveCancelled those of them whose KeepAlive
	// context ended with a cause matching redsync.ErrLockLost, and
	// KeepAliveRefused those whose KeepAlive call returned ErrLockLost
	// (Lock had returned after its Until).
	KeepAliveLost      int `json:"keepalive_lost"`
	KeepAliveCancelled int `json:"keepalive_cancelled"`
	KeepAliveRefused   int `json:"keepalive_refused"`
	// KeepAliveNotCancelled are the holders that saw Until pass while
	// their KeepAlive context stayed live (for two seconds more, or for
	// good): KeepAlive broke its contract.
	KeepAliveNotCancelled []HoldingRef `json:"keepalive_not_cancelled,omitempty"`
	// KeepAliveLate counts holders, not stopped by a client pause, whose
	// KeepAlive context ended after their Until (its contract is to end
	// before); MaxKeepAliveLate is the worst delay.
	KeepAliveLate    int           `json:"keepalive_late"`
	MaxKeepAliveLate time.Duration `json:"max_keepalive_late"`

	// LateLocks counts the Lock calls that returned success at or after
	// the Until they set, their process not stopped (FaultClientPause):
	// a holder that does not look at Until would work without the lock.
	// MaxLockReturn is the longest time from the start of a successful
	// attempt (Until less the expiry and the 1% drift) to Lock's return.
	LateLocks     int           `json:"late_locks"`
	MaxLockReturn time.Duration `json:"max_lock_return"`
	// SlowUnlocks counts the Unlock calls, their process not stopped, that
	// took longer than slowUnlock: an Unlock waits at most the per-server
	// deadline (5% of the expiry, 100 ms for 2 s) for the servers.
	// MaxUnlock is the slowest.
	SlowUnlocks int           `json:"slow_unlocks"`
	MaxUnlock   time.Duration `json:"max_unlock"`

	// PausedPastValidity counts holders whose validity ended while their
	// client process was stopped (FaultClientPause); every one of them
	// noticed when it resumed. Superseded counts those of them whose lock
	// another holder acquired before their process resumed: had they
	// acted on resuming without looking at Until or their context, only
	// fencing tokens would have stopped them.
	PausedPastValidity int `json:"paused_past_validity"`
	PausedNoticed      int `json:"paused_noticed"`
	Superseded         int `json:"superseded"`
	// PausedKeepAlive counts the holders paused past their validity that
	// used KeepAlive, PausedKeepAliveCancelled those of them whose context
	// was cancelled with a cause matching redsync.ErrLockLost.
	PausedKeepAlive          int `json:"paused_keepalive"`
	PausedKeepAliveCancelled int `json:"paused_keepalive_cancelled"`

	// Fencing sums up the check of fencing tokens (see checkFencing).
	// FencingHoldings counts the holdings with a token, FencingExpected
	// the holdings of fenced names (see fencedName), FencingCompared
	// those of them that had a definitely earlier holding of their name
	// with a token, so that their token was checked, and
	// FencingViolations lists the pairs whose tokens broke the order.
	Fencing           string             `json:"fencing"`
	FencingHoldings   int                `json:"fencing_holdings"`
	FencingExpected   int                `json:"fencing_expected"`
	FencingCompared   int                `json:"fencing_compared"`
	FencingViolations []FencingViolation `json:"fencing_violations,omitempty"`

	// Prims are the checks of the other primitives (see checkPrims), one
	// for each that held in the run; every count above is the Mutex
	// holders'.
	Prims []PrimCheck `json:"prims,omitempty"`
}

// A FencingViolation is a pair of holdings of one name whose acquisitions
// are definitely in one order (Later's Lock was called after Earlier's
// returned) while their tokens are not: Later's token is not larger.
// Earlier is, of the holdings that definitely precede Later, the one with
// the largest token.
type FencingViolation struct {
	Name    string     `json:"name"`
	Earlier HoldingRef `json:"earlier"`
	Later   HoldingRef `json:"later"`
}

// Check checks the holdings of a run against the faults injected in it.
// maxTTL is the longest expiry, used to relate overlaps to faults.
// The Mutex holdings are checked as they always were; the others by
// checkPrims, against the Mutex holdings where they share names.
func Check(all []Holding, faults []FaultEvent, maxTTL time.Duration) CheckResult {
	var holdings, others []Holding
	for i := range all {
		if all[i].Kind == KindMutex {
			holdings = append(holdings, all[i])
		} else {
			others = append(others, all[i])
		}
	}
	res := CheckResult{Holdings: len(holdings)}
	res.Overlaps = findOverlaps(holdings, faults, maxTTL)
	checkLatency(&res, holdings, faults)
	checkKeepAlive(&res, holdings, faults)
	checkPaused(&res, holdings, faults)
	checkFencing(&res, holdings)
	countHandOvers(&res, holdings)
	checkPrims(&res, holdings, others, faults, maxTTL)
	return res
}

// countHandOvers counts the hand-overs among holdings, and those from a
// holder in another process.
func countHandOvers(res *CheckResult, holdings []Holding) {
	byName := map[string][]*Holding{}
	for i := range holdings {
		h := &holdings[i]
		byName[h.Name] = append(byName[h.Name], h)
	}
	for _, hs := range byName {
		slices.SortFunc(hs, func(a, b *Holding) int { return cmp.Compare(a.Acquired, b.Acquired) })
		for i, h := range hs {
			if !h.HandedOver {
				continue
			}
			res.HandedOver++
			if i > 0 && hs[i-1].Client != h.Client {
				res.HandedAcross++
			}
		}
	}
}

// findOverlaps sweeps the windows of each name in order of their start:
// any two holders of one name overlapping are an overlap.
func findOverlaps(holdings []Holding, faults []FaultEvent, maxTTL time.Duration) []Overlap {
	hs := make([]*Holding, len(holdings))
	for i := range holdings {
		hs[i] = &holdings[i]
	}
	return pairOverlaps(hs, lockedNames, func(a, b *Holding) bool { return true }, faults, maxTTL)
}

// faultsDuring describes the faults in progress at some time in [from, to].
func faultsDuring(faults []FaultEvent, from, to int64) []string {
	var out []string
	for _, f := range faults {
		if f.Start <= to && f.Healed >= from {
			out = append(out, fmt.Sprintf("#%d %s %s", f.Seq, f.Kind, f.Target))
		}
	}
	return out
}

// pausedAt reports whether client was stopped by a FaultClientPause at t,
// and when it was resumed.
func pausedAt(faults []FaultEvent, client int, t int64) (bool, int64) {
	for _, f := range faults {
		if f.Kind == FaultClientPause && f.Client == client && f.Start <= t && t <= f.End {
			return true, f.End
		}
	}
	return false, 0
}

// slowUnlock is the Unlock duration past which the checker counts an
// Unlock as slow: well above the per-server deadline of the suite's
// expiries (at most 100 ms) and the scheduling delays of a loaded host.
const slowUnlock = 250 * time.Millisecond

// driftFactor is the library's default drift factor, which the clients
// use: Until is the attempt's start plus the expiry less 1%.
const driftFactor = 0.01

// pausedDuring reports whether client was stopped at some time in [from, to].
func pausedDuring(faults []FaultEvent, client int, from, to int64) bool {
	for _, f := range faults {
		if f.Kind == FaultClientPause && f.Client == client && f.Start <= to && f.End >= from {
			return true
		}
	}
	return false
}

func checkLatency(res *CheckResult, holdings []Holding, faults []FaultEvent) {
	for i := range holdings {
		h := &holdings[i]
		attemptStart := h.Until - int64(float64(h.ExpiryMS)*float64(time.Millisecond)*(1-driftFactor))
		if !pausedDuring(faults, h.Client, attemptStart, h.Acquired) {
			if d := time.Duration(h.Acquired - attemptStart); d > res.MaxLockReturn {
				res.MaxLockReturn = d
			}
			if h.Acquired >= h.Until {
				res.LateLocks++
			}
		}
		if h.UnlockDone != 0 && !pausedDuring(faults, h.Client, h.Released, h.UnlockDone) {
			d := time.Duration(h.UnlockDone - h.Released)
			if d > slowUnlock {
				res.SlowUnlocks++
			}
			if d > res.MaxUnlock {
				res.MaxUnlock = d
			}
		}
	}
}

func checkKeepAlive(res *CheckResult, holdings []Holding, faults []FaultEvent) {
	for i := range holdings {
		h := &holdings[i]
		if h.Mode != ModeKeepAlive || h.Lost == nil {
			continue
		}
		res.KeepAliveLost++
		switch {
		case h.Lost.CtxDone == 0 && h.Lost.CauseLockLost:
			res.KeepAliveRefused++
			continue
		case h.Lost.CtxDone == 0:
			res.KeepAliveNotCancelled = append(res.KeepAliveNotCancelled, refOf(h))
			continue
		case h.Lost.CauseLockLost:
			res.KeepAliveCancelled++
		}
		// Ended after Until: late, unless the process was stopped across
		// Until.
		until := lastUntil(h)
		if h.Lost.CtxDone <= until {
			continue
		}
		if paused, _ := pausedAt(faults, h.Client, until); paused {
			continue
		}
		res.KeepAliveLate++
		if late := time.Duration(h.Lost.CtxDone - until); late > res.MaxKeepAliveLate {
			res.MaxKeepAliveLate = late
		}
	}
}

// lastUntil is the last Until the holder knew of.
func lastUntil(h *Holding) int64 {
	until := h.Until
	for _, e := range h.Extensions {
		if e.Until > until {
			until = e.Until
		}
	}
	return until
}

func checkPaused(res *CheckResult, holdings []Holding, faults []FaultEvent) {
	byName := map[string][]*Holding{}
	for i := range holdings {
		byName[holdings[i].Name] = append(byName[holdings[i].Name], &holdings[i])
	}
	for i := range holdings {
		h := &holdings[i]
		end := h.End()
		if end == 0 || (h.Released != 0 && h.Released <= end) {
			continue // it unlocked before its validity ended
		}
		paused, resumed := pausedAt(faults, h.Client, end)
		if !paused {
			continue
		}
		res.PausedPastValidity++
		if h.Lost != nil && h.Lost.At >= resumed {
			res.PausedNoticed++
		}
		if h.Mode == ModeKeepAlive {
			res.PausedKeepAlive++
			if h.Lost != nil && h.Lost.CauseLockLost {
				res.PausedKeepAliveCancelled++
			}
		}
		for _, o := range byName[h.Name] {
			if o != h && o.Acquired > end && o.Acquired < resumed {
				res.Superseded++
				break
			}
		}
	}
}

// precedes reports whether a's acquisition definitely happened before
// b's: a's Lock returned before b's Lock was called. Each acquisition
// happened somewhere between its Lock call and Lock's return, which is
// all the records tell (Acquired alone may be late: the process can be
// stopped between the acquisition and the read of the clock).
func precedes(a, b *Holding) bool {
	return a.Acquired < b.LockStart
}

// fencingVerdict compares the tokens of two overlapping holders, a's Lock
// having returned first (see Overlap.Fencing); b cannot precede a then.
func fencingVerdict(a, b *Holding) string {
	switch {
	case a.Token == nil || b.Token == nil:
		return ""
	case !precedes(a, b):
		return FencingUndetermined
	case *b.Token > *a.Token:
		return FencingOrdered
	}
	return FencingInverted
}

// checkFencing checks that fencing tokens grow with the acquisitions of a
// name: for every pair of holdings of one name where one definitely
// precedes the other (see precedes), the later one's token must be
// larger. Pairs whose Lock calls overlapped in time are left out: the
// records cannot tell which of the two acquired first.
//
// Rather than compare every pair, it visits the holdings by their Lock
// call while a second cursor, over the holdings by Lock's return, brings
// in the holdings that definitely precede the one visited; per name it
// keeps the one with the largest token. A holding is in order when its
// token exceeds that largest one, so the check costs the two sorts.
func checkFencing(res *CheckResult, holdings []Holding) {
	var byStart []*Holding
	for i := range holdings {
		if fencedName(holdings[i].Name) {
			res.FencingExpected++
		}
		if holdings[i].Token != nil {
			byStart = append(byStart, &holdings[i])
		}
	}
	res.FencingHoldings = len(byStart)
	if len(byStart) == 0 {
		res.Fencing = "not checked: no holding had a fencing token"
		return
	}
	byReturn := slices.Clone(byStart)
	slices.SortFunc(byStart, func(a, b *Holding) int { return cmp.Compare(a.LockStart, b.LockStart) })
	slices.SortFunc(byReturn, func(a, b *Holding) int { return cmp.Compare(a.Acquired, b.Acquired) })
	// highest[name] is, of the holdings of name brought in so far, the one
	// with the largest token.
	highest := map[string]*Holding{}
	next := 0
	for _, h := range byStart {
		for ; next < len(byReturn) && byReturn[next].Acquired < h.LockStart; next++ {
			e := byReturn[next]
			if top, ok := highest[e.Name]; !ok || *e.Token > *top.Token {
				highest[e.Name] = e
			}
		}
		top, ok := highest[h.Name]
		if !ok {
			continue
		}
		res.FencingCompared++
		if *h.Token <= *top.Token {
			res.FencingViolations = append(res.FencingViolations, FencingViolation{Name: h.Name, Earlier: refOf(top), Later: refOf(h)})
		}
	}
	res.Fencing = fmt.Sprintf("%d of %d holdings had a token; %d followed an earlier holding of their name (its Lock returned before theirs was called), "+
		"%d of them without a larger token than every such holding",
		res.FencingHoldings, len(holdings), res.FencingCompared, len(res.FencingViolations))
}
