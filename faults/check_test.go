//go:build linux

package faults

import (
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func TestWindowFollowsExtensionsAndStopsAtUnlock(t *testing.T) {
	tests := []struct {
		name string
		h    Holding
		want [][2]int64
	}{
		{"lock to until", Holding{Acquired: 10 * ms, Until: 100 * ms}, [][2]int64{{10 * ms, 100 * ms}}},
		{"unlock cuts it short", Holding{Acquired: 10 * ms, Until: 100 * ms, Released: 40 * ms}, [][2]int64{{10 * ms, 40 * ms}}},
		{"released after until changes nothing", Holding{Acquired: 10 * ms, Until: 100 * ms, Released: 500 * ms}, [][2]int64{{10 * ms, 100 * ms}}},
		{
			"extensions in time make one window",
			Holding{Acquired: 10 * ms, Until: 100 * ms, Extensions: []Extension{{At: 60 * ms, Until: 160 * ms}, {At: 120 * ms, Until: 220 * ms}}},
			[][2]int64{{10 * ms, 220 * ms}},
		},
		{
			"an extension seen after until starts a new window",
			Holding{Acquired: 10 * ms, Until: 100 * ms, Extensions: []Extension{{At: 150 * ms, Until: 250 * ms}}, Released: 200 * ms},
			[][2]int64{{10 * ms, 100 * ms}, {150 * ms, 200 * ms}},
		},
		{"acquired after until: no window", Holding{Acquired: 100 * ms, Until: 90 * ms}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.h.Window()
			if len(got) != len(tt.want) {
				t.Fatalf("Window() = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Window() = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCheckFindsOverlapsOnlyWhereWindowsOverlap(t *testing.T) {
	hold := func(name string, client int, acquired, until, released int64) Holding {
		return Holding{Name: name, Client: client, Mode: ModePlain, Acquired: acquired, Until: until, Released: released}
	}
	tests := []struct {
		name     string
		holdings []Holding
		want     int
		wantMS   int64 // duration of the first overlap
	}{
		{"one after the other", []Holding{hold("a", 0, 0, 100*ms, 50*ms), hold("a", 1, 60*ms, 160*ms, 90*ms)}, 0, 0},
		{"touching", []Holding{hold("a", 0, 0, 100*ms, 50*ms), hold("a", 1, 50*ms, 160*ms, 90*ms)}, 0, 0},
		{"different names", []Holding{hold("a", 0, 0, 100*ms, 0), hold("b", 1, 10*ms, 160*ms, 0)}, 0, 0},
		{"overlap", []Holding{hold("a", 0, 0, 100*ms, 0), hold("a", 1, 70*ms, 160*ms, 90*ms)}, 1, 20},
		{"overlap found once", []Holding{
			{Name: "a", Acquired: 0, Until: 100 * ms, Extensions: []Extension{{At: 150 * ms, Until: 300 * ms}}},
			hold("a", 1, 50*ms, 400*ms, 0),
		}, 1, 50},
		{
			// A holder stopped past its validity unlocks late: its window
			// still ends at its Until, so the next holder does not overlap.
			"paused holder ends at its until",
			[]Holding{hold("a", 0, 0, 100*ms, 900*ms), hold("a", 1, 120*ms, 220*ms, 200*ms)}, 0, 0,
		},
		{"three holders at once, three pairs", []Holding{hold("a", 0, 0, 100*ms, 0), hold("a", 1, 90*ms, 200*ms, 0), hold("a", 2, 95*ms, 300*ms, 0)}, 3, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.holdings, nil, time.Second)
			if len(res.Overlaps) != tt.want {
				t.Fatalf("found %d overlaps, want %d: %+v", len(res.Overlaps), tt.want, res.Overlaps)
			}
			if tt.want > 0 {
				if got := res.Overlaps[0].Duration(); got != time.Duration(tt.wantMS)*time.Millisecond {
					t.Errorf("first overlap lasts %v, want %dms", got, tt.wantMS)
				}
			}
		})
	}
}

func TestCheckAttributesAClientPause(t *testing.T) {
	pause := FaultEvent{Seq: 1, Kind: FaultClientPause, Client: 0, Start: 50 * ms, End: 3000 * ms, Healed: 3001 * ms}
	holdings := []Holding{
		// Paused while holding; noticed on resume, its context cancelled.
		{Name: "a", Client: 0, Mode: ModeKeepAlive, Acquired: 0, Until: 100 * ms, Released: 3002 * ms,
			Lost: &Loss{At: 3001 * ms, Reason: LossExpired, CtxDone: 3001 * ms, CauseLockLost: true}},
		// Took the lock while the first holder's process was stopped.
		{Name: "a", Client: 1, Mode: ModePlain, Acquired: 200 * ms, Until: 300 * ms, Released: 250 * ms},
	}
	res := Check(holdings, []FaultEvent{pause}, time.Second)
	if len(res.Overlaps) != 0 {
		t.Errorf("overlaps %+v, want none", res.Overlaps)
	}
	if res.PausedPastValidity != 1 || res.PausedNoticed != 1 || res.Superseded != 1 {
		t.Errorf("paused %d, noticed %d, superseded %d; want 1 each", res.PausedPastValidity, res.PausedNoticed, res.Superseded)
	}
	if res.PausedKeepAlive != 1 || res.PausedKeepAliveCancelled != 1 {
		t.Errorf("paused with KeepAlive %d, cancelled %d; want 1 each", res.PausedKeepAlive, res.PausedKeepAliveCancelled)
	}
	if res.KeepAliveLate != 0 {
		t.Errorf("KeepAliveLate = %d; a paused holder is not late", res.KeepAliveLate)
	}
}

func TestCheckReportsKeepAliveContextsThatOutliveTheLock(t *testing.T) {
	holdings := []Holding{
		{Name: "a", Mode: ModeKeepAlive, Acquired: 0, Until: 100 * ms, Lost: &Loss{At: 101 * ms, Reason: LossExpired}},
		{Name: "b", Mode: ModeKeepAlive, Acquired: 0, Until: 100 * ms, Lost: &Loss{At: 103 * ms, Reason: LossExpired, CtxDone: 103 * ms, CauseLockLost: true}},
		{Name: "c", Mode: ModeKeepAlive, Acquired: 0, Until: 100 * ms, Lost: &Loss{At: 90 * ms, Reason: LossContext, CtxDone: 90 * ms, CauseLockLost: true}},
		// Lock returned after Until: KeepAlive refused with ErrLockLost.
		{Name: "d", Mode: ModeKeepAlive, Acquired: 110 * ms, Until: 100 * ms, Lost: &Loss{At: 110 * ms, Reason: LossExpired, CauseLockLost: true}},
	}
	res := Check(holdings, nil, time.Second)
	if res.KeepAliveLost != 4 || res.KeepAliveCancelled != 2 || res.KeepAliveRefused != 1 || len(res.KeepAliveNotCancelled) != 1 {
		t.Errorf("lost %d, cancelled %d, refused %d, not cancelled %d; want 4, 2, 1, 1",
			res.KeepAliveLost, res.KeepAliveCancelled, res.KeepAliveRefused, len(res.KeepAliveNotCancelled))
	}
	if res.LateLocks != 1 {
		t.Errorf("LateLocks = %d, want 1 (d returned after its Until)", res.LateLocks)
	}
	if res.KeepAliveLate != 1 || res.MaxKeepAliveLate != 3*time.Millisecond {
		t.Errorf("late %d (worst %v); want 1 (3ms)", res.KeepAliveLate, res.MaxKeepAliveLate)
	}
}

// fenced returns a holding of name by worker seq that called Lock at
// lockStart, got it back at acquired, and held it for 10ms with token.
func fenced(name string, seq int, lockStart, acquired int64, token uint64) Holding {
	return Holding{Name: name, Seq: seq, Mode: ModePlain, LockStart: lockStart, Acquired: acquired, Until: acquired + 10*ms, Token: &token}
}

func TestCheckFencingTokensMustGrowBetweenDefinitelyOrderedHoldings(t *testing.T) {
	tests := []struct {
		name         string
		holdings     []Holding
		wantCompared int
		want         [][2]int // the Seq of Earlier and Later of each violation
	}{
		{"one after the other, growing", []Holding{fenced("a", 1, 0, 5*ms, 1), fenced("a", 2, 20*ms, 25*ms, 5)}, 1, nil},
		{"one after the other, smaller", []Holding{fenced("a", 1, 0, 5*ms, 5), fenced("a", 2, 20*ms, 25*ms, 3)}, 1, [][2]int{{1, 2}}},
		{"one after the other, equal", []Holding{fenced("a", 1, 0, 5*ms, 5), fenced("a", 2, 20*ms, 25*ms, 5)}, 1, [][2]int{{1, 2}}},
		{
			// Lock of 1 was called before Lock of 2 returned, and the
			// other way round: 1's process may have been stopped after it
			// acquired, before it read the clock. Sorting by Lock's return
			// alone would have flagged 1.
			"overlapping Lock calls are not ordered",
			[]Holding{fenced("a", 1, 0, 50*ms, 3), fenced("a", 2, 20*ms, 30*ms, 5)}, 0, nil,
		},
		{
			"a Lock call that began as the other returned is not ordered",
			[]Holding{fenced("a", 1, 0, 20*ms, 5), fenced("a", 2, 20*ms, 30*ms, 3)}, 0, nil,
		},
		{
			"names are independent",
			[]Holding{fenced("a", 1, 0, 5*ms, 100), fenced("b", 2, 20*ms, 25*ms, 2), fenced("a", 3, 30*ms, 35*ms, 101), fenced("b", 4, 40*ms, 45*ms, 3)},
			2, nil,
		},
		{
			"an inversion on one name only",
			[]Holding{fenced("a", 1, 0, 5*ms, 100), fenced("b", 2, 20*ms, 25*ms, 200), fenced("a", 3, 30*ms, 35*ms, 50)},
			1, [][2]int{{1, 3}},
		},
		{
			// 2's Lock call overlaps 1's, so they are not compared; 3 follows
			// both and must beat the larger of their tokens, 1's.
			"the largest earlier token counts",
			[]Holding{fenced("a", 1, 0, 10*ms, 9), fenced("a", 2, 5*ms, 40*ms, 4), fenced("a", 3, 50*ms, 60*ms, 7)},
			1, [][2]int{{1, 3}},
		},
		{
			// 2's Lock returned late (its process stopped): 3 is not
			// compared with it, yet must beat 1.
			"a late return leaves the earlier holdings in force",
			[]Holding{fenced("a", 1, 0, 5*ms, 10), fenced("a", 2, 10*ms, 90*ms, 20), fenced("a", 3, 30*ms, 40*ms, 11)},
			2, nil,
		},
		{"a zero token after an earlier one", []Holding{fenced("a", 1, 0, 5*ms, 10), fenced("a", 2, 20*ms, 25*ms, 0)}, 1, [][2]int{{1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.holdings, nil, time.Second)
			if res.FencingHoldings != len(tt.holdings) {
				t.Errorf("FencingHoldings = %d, want %d", res.FencingHoldings, len(tt.holdings))
			}
			if res.FencingCompared != tt.wantCompared {
				t.Errorf("FencingCompared = %d, want %d", res.FencingCompared, tt.wantCompared)
			}
			var got [][2]int
			for _, v := range res.FencingViolations {
				got = append(got, [2]int{v.Earlier.Seq, v.Later.Seq})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations (earlier, later) = %v, want %v: %+v", got, tt.want, res.FencingViolations)
			}
		})
	}
}

func TestCheckSaysFencingWasNotCheckedWithoutTokens(t *testing.T) {
	res := Check([]Holding{{Name: "a", Acquired: 0, Until: 10 * ms}}, nil, time.Second)
	if res.FencingHoldings != 0 || res.FencingCompared != 0 || !strings.HasPrefix(res.Fencing, "not checked") {
		t.Errorf("holdings %d, compared %d, %q; want 0, 0 and a text that says fencing was not checked", res.FencingHoldings, res.FencingCompared, res.Fencing)
	}
}

// TestCheckFencingAgreesWithComparingEveryPair checks the sweep against
// the definition on random holdings of a few names, many of them with
// overlapping Lock calls and out-of-order tokens.
func TestCheckFencingAgreesWithComparingEveryPair(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 20; round++ {
		holdings := make([]Holding, 200)
		for i := range holdings {
			start := rng.Int63n(1000)
			holdings[i] = fenced(string(rune('a'+rng.Intn(3))), i, start, start+rng.Int63n(50), uint64(start+rng.Int63n(100)))
		}
		// A holding violates the order when a holding of its name
		// definitely precedes it with a token at least as large.
		wantViolations, wantCompared := 0, 0
		for i := range holdings {
			compared, violated := false, false
			for j := range holdings {
				if holdings[j].Name == holdings[i].Name && precedes(&holdings[j], &holdings[i]) {
					compared = true
					violated = violated || *holdings[j].Token >= *holdings[i].Token
				}
			}
			if compared {
				wantCompared++
			}
			if violated {
				wantViolations++
			}
		}
		var res CheckResult
		checkFencing(&res, holdings)
		if res.FencingCompared != wantCompared || len(res.FencingViolations) != wantViolations {
			t.Fatalf("round %d: compared %d, violations %d; comparing every pair gives %d and %d",
				round, res.FencingCompared, len(res.FencingViolations), wantCompared, wantViolations)
		}
		for _, v := range res.FencingViolations {
			e, l := &holdings[v.Earlier.Seq], &holdings[v.Later.Seq]
			if e.Name != l.Name || !precedes(e, l) || *e.Token < *l.Token {
				t.Fatalf("round %d: violation %+v does not break the order", round, v)
			}
		}
	}
}

func TestCheckTellsWhetherTokensOrderOverlappingHolders(t *testing.T) {
	tests := []struct {
		name string
		a, b Holding
		want string
	}{
		{"the later Lock called after the earlier returned, larger token", fenced("a", 1, 0, 5*ms, 1), fenced("a", 2, 8*ms, 9*ms, 2), FencingOrdered},
		{"the later Lock called after the earlier returned, smaller token", fenced("a", 1, 0, 5*ms, 2), fenced("a", 2, 8*ms, 9*ms, 1), FencingInverted},
		{"Lock calls overlapping", fenced("a", 1, 0, 5*ms, 2), fenced("a", 2, 4*ms, 9*ms, 1), FencingUndetermined},
		{"no tokens", Holding{Name: "a", Acquired: 0, Until: 10 * ms}, Holding{Name: "a", LockStart: 8 * ms, Acquired: 9 * ms, Until: 20 * ms}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check([]Holding{tt.a, tt.b}, nil, time.Second)
			if len(res.Overlaps) != 1 {
				t.Fatalf("found %d overlaps, want 1", len(res.Overlaps))
			}
			if got := res.Overlaps[0].Fencing; got != tt.want {
				t.Errorf("Overlap.Fencing = %q, want %q", got, tt.want)
			}
		})
	}
}
