package bench

import (
	"testing"
	"time"
)

// at makes a call record of process p, goroutine g, from times in
// microseconds after an origin: Lock called, Lock returned, Unlock called
// (0: the Lock failed).
func at(p, g int, call, ret, unlock int64) callRecord {
	us := int64(time.Microsecond)
	c := callRecord{Proc: p, G: g, Call: call * us, Return: ret * us}
	if unlock == 0 {
		c.Err = "failed"
		return c
	}
	c.Unlock, c.Unlocked = unlock*us, (unlock+10)*us
	return c
}

func TestAnalyseFleetCountsHandOffsAndOvertakers(t *testing.T) {
	calls := []callRecord{
		at(0, 0, 0, 10, 1010),     // first holder
		at(1, 0, 1, 1110, 2110),   // waited since 1 µs: served second, in order
		at(0, 1, 200, 2200, 3200), // started at 200 µs
		at(1, 1, 100, 3300, 4300), // started before 0/1 yet served after it: overtaken
		at(0, 0, 1020, 4400, 5400),
	}
	r := analyseFleet(calls, time.Unix(0, 0), time.Second, 2, 2)
	if r.acquisitions != 5 || r.overlaps != 0 || r.giveUps != 0 {
		t.Fatalf("acquisitions, overlaps, give-ups = %d, %d, %d; want 5, 0, 0", r.acquisitions, r.overlaps, r.giveUps)
	}
	if len(r.gaps) != 4 || r.gaps[0] != 100*time.Microsecond {
		t.Fatalf("gaps = %v, want 4 starting with 100µs (Unlock at 1010, next Lock return at 1110)", r.gaps)
	}
	// Hand-offs: 0→1, 1→0, 0→1, 1→0: all to another process.
	if r.otherProc != 1 {
		t.Errorf("other process = %v, want 1", r.otherProc)
	}
	// Only the call of process 0 goroutine 1 overtook a waiter (1/1,
	// called at 100 µs, still waiting when it returned at 2200 µs); the
	// last call of 0/0 started after every waiter then waiting.
	if want := 1.0 / 5; r.fifo != want {
		t.Errorf("FIFO violations = %v, want %v", r.fifo, want)
	}
	if lo, hi, _ := minMax(r.perG); lo != 1 || hi != 2 {
		t.Errorf("per goroutine min–max = %d–%d, want 1–2", lo, hi)
	}
}

func TestCountOverlapsFindsTwoHoldersAtOnce(t *testing.T) {
	held := []callRecord{
		at(0, 0, 0, 10, 1000),
		at(1, 0, 0, 500, 1500), // returned while 0/0 still held
		at(2, 0, 0, 1600, 2000),
	}
	if got := countOverlaps(held); got != 1 {
		t.Fatalf("overlaps = %d, want 1", got)
	}
}

func TestAnalyseFleetCountsGiveUpsAndOmitsLateAcquisitions(t *testing.T) {
	calls := []callRecord{
		at(0, 0, 0, 10, 900),
		at(0, 1, 0, 300, 0),     // Lock failed before the end: a give-up
		at(1, 0, 5, 2000, 2500), // returned after the end (1 ms)
	}
	calls[1].GiveUp = true
	r := analyseFleet(calls, time.Unix(0, 0), time.Millisecond, 2, 2)
	if r.acquisitions != 1 || r.giveUps != 1 {
		t.Fatalf("acquisitions, give-ups = %d, %d; want 1, 1", r.acquisitions, r.giveUps)
	}
	if r.overlaps != 0 {
		t.Fatalf("overlaps = %d, want 0", r.overlaps)
	}
}
