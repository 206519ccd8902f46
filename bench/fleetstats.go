package bench

import (
	"slices"
	"sort"
	"time"
)

// fifoMargin is how much earlier another waiter's Lock call must have
// started for a holder to count as having overtaken it: calls that start
// within a few microseconds of each other have no order worth judging (the
// fleet queue's ticket is taken inside Lock, by its process's clock).
const fifoMargin = 50 * time.Microsecond

// fleetRound is what one round of a multi-process contention run
// measured, from the records of every process.
type fleetRound struct {
	acquisitions int // Lock returned before the end of the round
	rate         float64
	gaps         []time.Duration // Unlock call to the next holder's Lock return
	// gapsHanded and gapsOwn split gaps by how the next holder got the
	// lock: a hand-over, or an attempt of its own (quorumlock only).
	gapsHanded, gapsOwn []time.Duration
	waits               []time.Duration // Lock call to return, counted acquisitions
	holds               []time.Duration // Lock return to Unlock call
	unlocks             []time.Duration // Unlock call to return
	// afterUnlock is, per hand-off, from the releaser's Unlock return to
	// the next holder's Lock return (negative when the next one got it
	// first).
	afterUnlock   []time.Duration
	perProc, perG []int // acquisitions per process, per goroutine
	// otherProc and sameG are shares of the hand-offs (consecutive
	// acquisitions): to a holder in another process, and back to the
	// goroutine that released.
	otherProc, sameG float64
	// fifo is the share of acquisitions that overtook a waiter: another
	// Lock call that started at least fifoMargin earlier and returned
	// later than this one's Lock.
	fifo float64
	// giveUps are Lock errors before the end; overlaps, acquisitions
	// whose hold (Lock return to Unlock call) began before the previous
	// hold ended; unlockErrs, failed Unlocks.
	giveUps, overlaps, unlockErrs int
	// attempts are the attempts of each counted acquisition, handed the
	// share that took a hand-over (quorumlock's Observer; zero for
	// redsync).
	attempts []float64
	handed   float64
}

// analyseFleet computes a round's figures from every process's records.
// The round ran from start for d; there were procs processes of
// goroutines each.
func analyseFleet(calls []callRecord, start time.Time, d time.Duration, procs, goroutines int) fleetRound {
	end := start.Add(d).UnixNano()
	r := fleetRound{perProc: make([]int, procs), perG: make([]int, procs*goroutines)}
	var held []callRecord // every acquisition, for overlaps and hand-offs
	handed := 0
	for _, c := range calls {
		switch {
		case c.GiveUp:
			r.giveUps++
		case !c.ok():
		default:
			held = append(held, c)
			if c.UnlockErr != "" {
				r.unlockErrs++
			}
			if c.Return >= end {
				continue
			}
			r.acquisitions++
			r.perProc[c.Proc]++
			r.perG[c.Proc*goroutines+c.G]++
			r.waits = append(r.waits, time.Duration(c.Return-c.Call))
			r.holds = append(r.holds, time.Duration(c.Unlock-c.Return))
			r.unlocks = append(r.unlocks, time.Duration(c.Unlocked-c.Unlock))
			r.attempts = append(r.attempts, float64(c.Attempts))
			if c.Handed {
				handed++
			}
		}
	}
	r.rate = float64(r.acquisitions) / d.Seconds()
	r.handed = float64(handed) / float64(max(1, r.acquisitions))

	r.overlaps = countOverlaps(held) // sorts held by Lock return
	other, same, pairs := 0, 0, 0
	for i, c := range held {
		if i == 0 || c.Return >= end {
			continue
		}
		prev := held[i-1]
		gap := time.Duration(c.Return - prev.Unlock)
		r.gaps = append(r.gaps, gap)
		r.afterUnlock = append(r.afterUnlock, time.Duration(c.Return-prev.Unlocked))
		if c.Handed {
			r.gapsHanded = append(r.gapsHanded, gap)
		} else {
			r.gapsOwn = append(r.gapsOwn, gap)
		}
		pairs++
		if c.Proc != prev.Proc {
			other++
		} else if c.G == prev.G {
			same++
		}
	}
	r.otherProc = float64(other) / float64(max(1, pairs))
	r.sameG = float64(same) / float64(max(1, pairs))
	r.fifo = float64(overtakers(calls, end)) / float64(max(1, r.acquisitions))
	return r
}

// countOverlaps sorts held, acquisitions, by their Lock return and counts
// those whose hold (Lock return to Unlock call, a part of the time the
// lock was really held) began before an earlier one's ended: two holders
// at once.
func countOverlaps(held []callRecord) int {
	slices.SortFunc(held, func(a, b callRecord) int { return compareInt64(a.Return, b.Return) })
	var heldUntil int64
	n := 0
	for i, c := range held {
		if i > 0 && c.Return < heldUntil {
			n++
		}
		heldUntil = max(heldUntil, c.Unlock)
	}
	return n
}

// overtakers counts the acquisitions returned before end that overtook a
// waiter: some other Lock call started at least fifoMargin before theirs
// and returned (acquired, gave up, or was cut off at the end) after their
// Lock returned. A queue that serves waiters in the order their Lock calls
// started has none.
func overtakers(calls []callRecord, end int64) int {
	byCall := slices.Clone(calls)
	slices.SortFunc(byCall, func(a, b callRecord) int { return compareInt64(a.Call, b.Call) })
	// latest[k] is the latest return among the first k calls.
	latest := make([]int64, len(byCall)+1)
	for i, c := range byCall {
		latest[i+1] = max(latest[i], c.Return)
	}
	n := 0
	for _, c := range calls {
		if !c.ok() || c.Return >= end {
			continue
		}
		before := c.Call - int64(fifoMargin)
		k := sort.Search(len(byCall), func(i int) bool { return byCall[i].Call >= before })
		if latest[k] > c.Return {
			n++
		}
	}
	return n
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// minMax returns the smallest and largest of counts, and their ratio
// (fairness: 1 when every one got as many).
func minMax(counts []int) (lo, hi int, fairness float64) {
	if len(counts) == 0 {
		return 0, 0, 0
	}
	lo, hi = slices.Min(counts), slices.Max(counts)
	return lo, hi, float64(lo) / float64(max(1, hi))
}

// meanOf returns the mean of v (0 for none).
func meanOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}
