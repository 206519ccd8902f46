package scripts

import (
	"reflect"
	"testing"
	"time"
)

func TestFencedMultiAcquireReadsTheHighestCounterWhenItSetsEveryKey(t *testing.T) {
	s := newServer(t)
	keys := []string{"a", "b", "{a}:fence", "{b}:fence"}
	s.set("{a}:fence", "17", time.Minute)
	s.set("{b}:fence", "0123", time.Minute)
	s.set("b", "other", time.Minute)
	got, err := ParseFencedMultiAcquire(s.run(FencedMultiAcquire, keys, int64(2), "v", int64(7000)), 2)
	if err != nil || got.Acquired || got.Refused != 2 {
		t.Fatalf("with b taken: %+v, %v; want refused at 2", got, err)
	}
	if v, _ := s.get("a"); v != "" {
		t.Errorf("a = %q after a refused acquire", v)
	}
	s.del("b")
	before := uint64(time.Now().UnixMicro())
	got, err = ParseFencedMultiAcquire(s.run(FencedMultiAcquire, keys, int64(2), "v", int64(7000)), 2)
	if err != nil || !got.Acquired || got.Counter != 123 {
		t.Fatalf("with both free: %+v, %v; want acquired, counter 123", got, err)
	}
	if got.Clock+1e6 < before {
		t.Errorf("clock %d, more than a second before %d", got.Clock, before)
	}
	for _, k := range []string{"a", "b"} {
		if v, ttl := s.get(k); v != "v" || ttl <= 0 {
			t.Errorf("%s = %q, PTTL %v", k, v, ttl)
		}
	}
	s.del("a")
	s.del("b")
	s.set("{b}:fence", "not a counter", time.Minute)
	got, err = ParseFencedMultiAcquire(s.run(FencedMultiAcquire, keys, int64(2), "v", int64(7000)), 2)
	if err != nil || !got.NotCounter {
		t.Fatalf("with a counter key in use: %+v, %v; want NotCounter", got, err)
	}
	if v, _ := s.get("a"); v != "" {
		t.Errorf("a = %q after an acquire that found a counter key in use", v)
	}
}

func TestFencedPermitAcquireReadsTheCounterWhenItSetsTheSlots(t *testing.T) {
	s := newServer(t)
	keys := []string{"p0", "p1", "p2", "fence"}
	s.set("p1", "other", time.Minute)
	got, set, err := ParseFencedPermitAcquire(s.run(FencedPermitAcquire, keys, "v", int64(7000), int64(3), int64(1)), 3, 3, nil)
	if err != nil || got.Acquired || got.Refused != 2 || set != nil {
		t.Fatalf("3 of 3 with one taken: %+v, %v, %v; want 2 free", got, set, err)
	}
	got, set, err = ParseFencedPermitAcquire(s.run(FencedPermitAcquire, keys, "v", int64(7000), int64(2), int64(2)), 3, 2, nil)
	if err != nil || !got.Acquired || got.Counter != 0 || got.Clock == 0 || !reflect.DeepEqual(set, []int{2, 0}) {
		t.Fatalf("2 from slot 2: %+v, %v, %v; want slots [2 0], no counter", got, set, err)
	}
	s.set("fence", "42", time.Minute)
	s.del("p1")
	got, set, err = ParseFencedPermitAcquire(s.run(FencedPermitAcquire, keys, "w", int64(7000), int64(1), int64(1)), 3, 1, nil)
	if err != nil || !got.Acquired || got.Counter != 42 || !reflect.DeepEqual(set, []int{1}) {
		t.Fatalf("the last slot: %+v, %v, %v; want slot 1, counter 42", got, set, err)
	}
}

func TestMultiFenceWriteBackRaisesEveryCounterOnlyForTheHolder(t *testing.T) {
	s := newServer(t)
	keys := []string{"a", "b", "{a}:fence", "{b}:fence"}
	s.set("a", "v", time.Minute)
	s.set("b", "other", time.Minute)
	s.set("{a}:fence", "50", time.Minute)
	if r, err := ParseFenceWriteBack(s.run(MultiFenceWriteBack, keys, int64(2), "v", "40", int64(60000))); err != nil || r != FenceWriteBackNotHeld {
		t.Fatalf("b held by another: %v, %v", r, err)
	}
	s.set("b", "v", time.Minute)
	if r, err := ParseFenceWriteBack(s.run(MultiFenceWriteBack, keys, int64(2), "v", "40", int64(60000))); err != nil || r != FenceWriteBackStored {
		t.Fatalf("both held: %v, %v", r, err)
	}
	if v, _ := s.get("{a}:fence"); v != "50" {
		t.Errorf("{a}:fence = %q, want 50 kept (higher than the token)", v)
	}
	if v, ttl := s.get("{b}:fence"); v != "40" || ttl < 30*time.Second {
		t.Errorf("{b}:fence = %q, PTTL %v; want 40", v, ttl)
	}
	s.set("{a}:fence", "x", time.Minute)
	if r, err := ParseFenceWriteBack(s.run(MultiFenceWriteBack, keys, int64(2), "v", "60", int64(60000))); err != nil || r != FenceWriteBackNotCounter {
		t.Fatalf("a counter key in use: %v, %v", r, err)
	}
	if v, _ := s.get("{b}:fence"); v != "40" {
		t.Errorf("{b}:fence = %q written beside a counter key in use", v)
	}
}
