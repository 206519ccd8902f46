//go:build linux

package faults

import (
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

func TestCheckFencingTokensMustGrow(t *testing.T) {
	token := func(v uint64) *uint64 { return &v }
	holdings := []Holding{
		{Name: "a", Acquired: 0, Until: 10 * ms, Token: token(1)},
		{Name: "a", Acquired: 20 * ms, Until: 30 * ms, Token: token(5)},
		{Name: "b", Acquired: 25 * ms, Until: 30 * ms, Token: token(2)}, // another name: its own sequence
		{Name: "a", Acquired: 40 * ms, Until: 50 * ms, Token: token(5)}, // not larger
	}
	res := Check(holdings, nil, time.Second)
	if len(res.FencingViolations) != 1 || res.FencingViolations[0].Acquired != 40*ms {
		t.Errorf("fencing violations %+v, want the holding acquired at 40ms", res.FencingViolations)
	}
	if res := Check(holdings[:0], nil, time.Second); res.Fencing == "" {
		t.Error("without tokens the check must say fencing was not checked")
	}
}
