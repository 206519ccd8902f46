//go:build linux

package faults

import (
	"strings"
	"testing"
	"time"
)

// primCheck returns the check of kind in res, failing the test when the
// checker made none.
func primCheck(t *testing.T, res CheckResult, kind string) PrimCheck {
	t.Helper()
	for _, p := range res.Prims {
		if p.Kind == kind {
			return p
		}
	}
	t.Fatalf("no check of %s in %+v", kind, res.Prims)
	return PrimCheck{}
}

// held is a holding of kind from acquired to released (its Until far
// later), by client.
func held(kind, name string, client int, acquired, released int64) Holding {
	return Holding{Kind: kind, Name: name, Client: client, Mode: ModePlain, LockStart: acquired - ms, Acquired: acquired, Until: acquired + 500*ms, Released: released}
}

func lease(client, weight, permits int, acquired, released int64) Holding {
	h := held(KindSemaphore, "s", client, acquired, released)
	h.Weight, h.Permits = weight, permits
	return h
}

func TestCheckSemaphoreNeverHoldsMoreThanItsPermits(t *testing.T) {
	tests := []struct {
		name       string
		holdings   []Holding
		want       int // excesses
		wantWeight int // weight held in the first
		wantMS     int64
	}{
		{"two of two permits at once", []Holding{lease(0, 1, 2, 0, 100*ms), lease(1, 1, 2, 10*ms, 120*ms)}, 0, 0, 0},
		{"one after the other, touching", []Holding{lease(0, 2, 2, 0, 100*ms), lease(1, 2, 2, 100*ms, 200*ms)}, 0, 0, 0},
		{"a third permit of two", []Holding{lease(0, 1, 2, 0, 100*ms), lease(1, 1, 2, 10*ms, 200*ms), lease(2, 1, 2, 60*ms, 300*ms)}, 1, 3, 40},
		{"a weight of 2 beside a weight of 1", []Holding{lease(0, 2, 2, 0, 100*ms), lease(1, 1, 2, 70*ms, 200*ms)}, 1, 3, 30},
		{"two separate excesses", []Holding{
			lease(0, 2, 2, 0, 300*ms), lease(1, 1, 2, 10*ms, 20*ms), lease(2, 1, 2, 200*ms, 250*ms),
		}, 2, 3, 10},
		{
			// A holder stopped past its validity releases late: its
			// window ends at its Until, so a lease taken after that is
			// no excess.
			"paused lease ends at its until",
			[]Holding{
				{Kind: KindSemaphore, Name: "s", Weight: 2, Permits: 2, Acquired: 0, Until: 100 * ms, Released: 900 * ms},
				lease(1, 2, 2, 120*ms, 200*ms),
			}, 0, 0, 0,
		},
		{"other semaphores do not count", []Holding{lease(0, 2, 2, 0, 100*ms), func() Holding {
			h := lease(1, 2, 2, 10*ms, 100*ms)
			h.Name = "other"
			return h
		}()}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := primCheck(t, Check(tt.holdings, nil, time.Second), KindSemaphore)
			if len(p.Excesses) != tt.want {
				t.Fatalf("%d excesses, want %d: %+v", len(p.Excesses), tt.want, p.Excesses)
			}
			if tt.want == 0 {
				return
			}
			e := p.Excesses[0]
			if e.Weight != tt.wantWeight || e.Duration() != time.Duration(tt.wantMS*ms) || e.Permits != 2 {
				t.Errorf("excess: weight %d of %d for %v, want weight %d of 2 for %dms", e.Weight, e.Permits, e.Duration(), tt.wantWeight, tt.wantMS)
			}
			if len(e.Holders) < 2 {
				t.Errorf("excess names %d holders: %+v", len(e.Holders), e.Holders)
			}
		})
	}
}

func multi(client int, acquired, released int64, names ...string) Holding {
	h := held(KindMulti, names[0], client, acquired, released)
	h.Names = names
	return h
}

func TestCheckMultiMutexExcludesOverlappingNameSetsAndMutexHolders(t *testing.T) {
	tests := []struct {
		name     string
		holdings []Holding
		want     string // the name of the overlap, "" for none
	}{
		{"disjoint sets at once", []Holding{multi(0, 0, 100*ms, "a", "b"), multi(1, 10*ms, 100*ms, "c", "d")}, ""},
		{"sharing a name, one after the other", []Holding{multi(0, 0, 100*ms, "a", "b"), multi(1, 100*ms, 200*ms, "b", "a")}, ""},
		{"sharing a name at once", []Holding{multi(0, 0, 100*ms, "a", "b"), multi(1, 50*ms, 200*ms, "c", "b")}, "b"},
		{"sharing two names: one overlap", []Holding{multi(0, 0, 100*ms, "a", "b"), multi(1, 50*ms, 200*ms, "b", "a")}, "a"},
		{"a Mutex holder of one of the names", []Holding{multi(0, 0, 100*ms, "a", "b"), held(KindMutex, "b", 1, 60*ms, 90*ms)}, "b"},
		{"a Mutex holder of another name", []Holding{multi(0, 0, 100*ms, "a", "b"), held(KindMutex, "c", 1, 60*ms, 90*ms)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := primCheck(t, Check(tt.holdings, nil, time.Second), KindMulti)
			switch {
			case tt.want == "" && len(p.Overlaps) != 0:
				t.Fatalf("overlaps %+v, want none", p.Overlaps)
			case tt.want == "":
			case len(p.Overlaps) != 1:
				t.Fatalf("%d overlaps, want 1 on %s: %+v", len(p.Overlaps), tt.want, p.Overlaps)
			case p.Overlaps[0].Name != tt.want:
				t.Errorf("overlap on %s, want %s", p.Overlaps[0].Name, tt.want)
			}
		})
	}
}

func TestCheckMultiMutexLeavesMutexPairsToTheMutexCheck(t *testing.T) {
	res := Check([]Holding{
		multi(0, 0, 10*ms, "a", "b"),
		held(KindMutex, "b", 1, 50*ms, 100*ms), held(KindMutex, "b", 2, 60*ms, 100*ms),
	}, nil, time.Second)
	if p := primCheck(t, res, KindMulti); len(p.Overlaps) != 0 || p.WithMutex != 1 {
		t.Errorf("multimutex: %d overlaps, %d holdings with a Mutex name; want 0 and 1", len(p.Overlaps), p.WithMutex)
	}
	if len(res.Overlaps) != 1 || res.Holdings != 2 {
		t.Errorf("the Mutex check found %d overlaps in %d holdings, want 1 in 2", len(res.Overlaps), res.Holdings)
	}
}

func rw(shared bool, client int, acquired, released int64) Holding {
	h := held(KindRWMutex, "rw", client, acquired, released)
	h.Shared = shared
	return h
}

func TestCheckRWMutexLetsReadersShareAndNothingElse(t *testing.T) {
	const reader, writer = true, false
	tests := []struct {
		name       string
		holdings   []Holding
		want       int
		wantShared int
	}{
		{"readers at once", []Holding{rw(reader, 0, 0, 100*ms), rw(reader, 1, 10*ms, 100*ms), rw(reader, 2, 20*ms, 50*ms)}, 0, 3},
		{"a writer after the readers", []Holding{rw(reader, 0, 0, 100*ms), rw(reader, 1, 10*ms, 90*ms), rw(writer, 2, 100*ms, 150*ms)}, 0, 1},
		{"a writer with a reader", []Holding{rw(reader, 0, 0, 100*ms), rw(writer, 1, 90*ms, 150*ms)}, 1, 0},
		{"a reader with a writer", []Holding{rw(writer, 0, 0, 100*ms), rw(reader, 1, 50*ms, 60*ms)}, 1, 0},
		{"two writers", []Holding{rw(writer, 0, 0, 100*ms), rw(writer, 1, 99*ms, 150*ms)}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := primCheck(t, Check(tt.holdings, nil, time.Second), KindRWMutex)
			if len(p.Overlaps) != tt.want || p.SharedOverlaps != tt.wantShared {
				t.Errorf("%d overlaps and %d reader pairs, want %d and %d: %+v", len(p.Overlaps), p.SharedOverlaps, tt.want, tt.wantShared, p.Overlaps)
			}
		})
	}
}

func leader(client int, term uint64, acquired, released int64) Holding {
	h := held(KindElection, "e", client, acquired, released)
	h.Mode, h.Token = ModeKeepAlive, &term
	return h
}

func TestCheckElectionHasOneLeaderAtATimeAndGrowingTerms(t *testing.T) {
	late := leader(2, 1, 300*ms, 400*ms)
	late.Until = 250 * ms // Campaign returned after its Until: it never led
	tests := []struct {
		name     string
		holdings []Holding
		overlaps int
		terms    int // term violations
		compared int
	}{
		{"one after the other, terms growing", []Holding{leader(0, 3, 0, 100*ms), leader(1, 7, 100*ms, 200*ms), leader(0, 8, 250*ms, 300*ms)}, 0, 0, 2},
		{"two leaders at once", []Holding{leader(0, 3, 0, 100*ms), leader(1, 4, 90*ms, 200*ms)}, 1, 0, 1},
		{"a smaller term later", []Holding{leader(0, 5, 0, 100*ms), leader(1, 4, 150*ms, 200*ms)}, 0, 1, 1},
		{"the same term again", []Holding{leader(0, 5, 0, 100*ms), leader(1, 5, 150*ms, 200*ms)}, 0, 1, 1},
		{"a term smaller than one before the last", []Holding{leader(0, 9, 0, 100*ms), leader(1, 3, 150*ms, 200*ms), leader(0, 8, 250*ms, 300*ms)}, 0, 2, 2},
		{"a leadership that never began is not ordered", []Holding{leader(0, 5, 0, 100*ms), late, leader(1, 6, 450*ms, 500*ms)}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := primCheck(t, Check(tt.holdings, nil, time.Second), KindElection)
			if len(p.Overlaps) != tt.overlaps || len(p.TermViolations) != tt.terms || p.Terms != tt.compared {
				t.Errorf("%d overlaps, %d term violations of %d compared; want %d, %d of %d: %+v %+v",
					len(p.Overlaps), len(p.TermViolations), p.Terms, tt.overlaps, tt.terms, tt.compared, p.Overlaps, p.TermViolations)
			}
		})
	}
}

func TestCheckPrimsPassALegalHistory(t *testing.T) {
	res := Check([]Holding{
		lease(0, 1, 2, 0, 100*ms), lease(1, 1, 2, 0, 100*ms), lease(2, 2, 2, 100*ms, 200*ms),
		multi(0, 0, 100*ms, "a", "b"), multi(1, 0, 100*ms, "c", "d"), multi(2, 100*ms, 200*ms, "d", "a"),
		held(KindMutex, "a", 3, 200*ms, 300*ms),
		rw(true, 0, 0, 100*ms), rw(true, 1, 50*ms, 100*ms), rw(false, 2, 100*ms, 200*ms),
		leader(0, 10, 0, 100*ms), leader(1, 11, 100*ms, 200*ms),
	}, nil, time.Second)
	if len(res.Prims) != len(AllPrims) {
		t.Fatalf("%d primitives checked, want %d", len(res.Prims), len(AllPrims))
	}
	for _, p := range res.Prims {
		if p.Violations() != 0 {
			t.Errorf("%s: %d violations in a legal history: %+v", p.Kind, p.Violations(), p)
		}
	}
	rep := &Report{Check: res}
	if f := rep.Failures(); len(f) != 0 {
		t.Errorf("Failures() = %v, want none", f)
	}
}

func TestPrimViolationsFailTheRunAndNameTheFault(t *testing.T) {
	faults := []FaultEvent{{Seq: 4, Kind: FaultPartition, Target: "servers 1,2", Start: 50 * ms, End: 80 * ms, Healed: 80 * ms}}
	res := Check([]Holding{
		lease(0, 2, 2, 100*ms, 200*ms), lease(1, 1, 2, 150*ms, 250*ms),
		leader(0, 5, 0, 100*ms), leader(1, 4, 150*ms, 200*ms),
	}, faults, time.Second)
	sem := primCheck(t, res, KindSemaphore)
	if len(sem.Excesses) != 1 || len(sem.Excesses[0].Faults) != 1 || !strings.Contains(sem.Excesses[0].Faults[0], FaultPartition) {
		t.Errorf("excesses %+v, want one with the partition around it", sem.Excesses)
	}
	rep := &Report{Check: res}
	if f := strings.Join(rep.Failures(), "; "); !strings.Contains(f, "1 semaphore holders") || !strings.Contains(f, "1 election leaderships") {
		t.Errorf("Failures() = %q, want the excess and the term", f)
	}
	// With a fault that breaks Redlock's assumptions an excess is
	// expected; terms out of order never are.
	rep.FaultKinds = []string{FaultRestartNow}
	if f := strings.Join(rep.Failures(), "; "); strings.Contains(f, "semaphore") || !strings.Contains(f, "election") {
		t.Errorf("with %s, Failures() = %q, want the term only", FaultRestartNow, f)
	}
}
