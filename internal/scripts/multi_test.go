package scripts

import (
	"reflect"
	"testing"
	"time"
)

func TestMultiAcquireSetsEveryKeyOrNone(t *testing.T) {
	s := newServer(t)
	keys := []string{"a", "b", "c"}
	s.set("b", "other", time.Minute)
	if got, err := ParseMultiIndex(s.run(MultiAcquire, keys, "v", int64(7000)), 3, "multi acquire"); err != nil || got != 2 {
		t.Fatalf("with b taken: %d, %v; want 2", got, err)
	}
	for _, k := range []string{"a", "c"} {
		if v, _ := s.get(k); v != "" {
			t.Errorf("%s set to %q by a refused acquire", k, v)
		}
	}
	s.del("b")
	if got, err := ParseMultiIndex(s.run(MultiAcquire, keys, "v", int64(7000)), 3, "multi acquire"); err != nil || got != 0 {
		t.Fatalf("with all free: %d, %v; want 0", got, err)
	}
	for _, k := range keys {
		if v, ttl := s.get(k); v != "v" || ttl <= 0 || ttl > 7000*time.Millisecond {
			t.Errorf("%s = %q, PTTL %v; want v with the expiry", k, v, ttl)
		}
	}
}

func TestMultiExtendExtendsAllOrNone(t *testing.T) {
	s := newServer(t)
	keys := []string{"a", "b"}
	s.set("a", "v", time.Second)
	s.set("b", "other", time.Second)
	if got, _ := ParseMultiIndex(s.run(MultiExtend, keys, "v", int64(60000)), 2, "multi extend"); got != 2 {
		t.Errorf("b held by another: %d, want 2", got)
	}
	if _, ttl := s.get("a"); ttl > time.Second {
		t.Errorf("a extended to %v by a refused extension", ttl)
	}
	s.del("b")
	if got, _ := ParseMultiIndex(s.run(MultiExtend, keys, "v", int64(60000)), 2, "multi extend"); got != -2 {
		t.Errorf("b missing: %d, want -2", got)
	}
	s.set("b", "v", time.Second)
	if got, _ := ParseMultiIndex(s.run(MultiExtend, keys, "v", int64(60000)), 2, "multi extend"); got != 0 {
		t.Errorf("both held: %d, want 0", got)
	}
	for _, k := range keys {
		if _, ttl := s.get(k); ttl < 30*time.Second {
			t.Errorf("%s: PTTL %v after the extension", k, ttl)
		}
	}
}

func TestMultiReleaseDeletesOnlyTheHoldersKeysAndAnnounces(t *testing.T) {
	s := newServer(t)
	s.set("a", "v", time.Minute)
	s.set("b", "other", time.Minute)
	announced := s.subscribe("redsync:released:a")
	got, err := ParseMultiRelease(s.run(MultiRelease, []string{"a", "b", "c"}, "v", "redsync:released:", ""))
	if err != nil || got != (MultiReleaseReply{Released: 1, Missing: 1, Other: 1}) {
		t.Fatalf("reply %+v, %v", got, err)
	}
	if v, _ := s.get("b"); v != "other" {
		t.Errorf("b = %q: another holder's key was touched", v)
	}
	select {
	case <-announced:
	case <-time.After(5 * time.Second):
		t.Error("the release of a was not announced")
	}
	s.set("{s}:permit:0", "v", time.Minute)
	once := s.subscribe("redsync:released:sem")
	if got, _ := ParseMultiRelease(s.run(MultiRelease, []string{"{s}:permit:0"}, "v", "redsync:released:", "sem")); got.Released != 1 {
		t.Fatalf("reply %+v", got)
	}
	select {
	case <-once:
	case <-time.After(5 * time.Second):
		t.Error("the release was not announced on the channel given")
	}
}

func TestPermitAcquireTakesTheFirstFreeSlotsOrNone(t *testing.T) {
	s := newServer(t)
	slots := []string{"p0", "p1", "p2", "p3"}
	s.set("p2", "other", time.Minute)
	set, free, err := ParsePermitAcquire(s.run(PermitAcquire, slots, "v", int64(7000), int64(2), int64(2)), 4, 2, nil)
	if err != nil || free != 2 || !reflect.DeepEqual(set, []int{1, 3}) {
		t.Fatalf("from slot 2: %v, %d free, %v; want slots [1 3]", set, free, err)
	}
	set, free, err = ParsePermitAcquire(s.run(PermitAcquire, slots, "w", int64(7000), int64(2), int64(1)), 4, 2, nil)
	if err != nil || free != 1 || set != nil {
		t.Fatalf("one free slot for 2: %v, %d free, %v", set, free, err)
	}
	if v, _ := s.get("p0"); v != "" {
		t.Errorf("p0 = %q after a refused acquire", v)
	}
}

func TestParsersRefuseRepliesTheScriptsNeverMake(t *testing.T) {
	if _, err := ParseMultiRelease(int64(1)); err == nil {
		t.Error("ParseMultiRelease(1) returned no error")
	}
	if _, err := ParseMultiIndex(int64(3), 2, "x"); err == nil {
		t.Error("ParseMultiIndex(3) of 2 keys returned no error")
	}
	if _, _, err := ParsePermitAcquire([]any{int64(5)}, 4, 1, nil); err == nil {
		t.Error("ParsePermitAcquire of slot 5 of 4 returned no error")
	}
	if _, _, err := ParsePermitAcquire(int64(2), 4, 2, nil); err == nil {
		t.Error("ParsePermitAcquire of 2 free for 2 returned no error")
	}
}

// TestMultiReleaseAnnouncesOnShardedChannels: each key's release goes to
// its sharded channel (as a Mutex's does), and a single announcement to
// the one given.
func TestMultiReleaseAnnouncesOnShardedChannels(t *testing.T) {
	s := newServer(t)
	s.set("a", "v", time.Minute)
	s.set("{t}:b", "v", time.Minute)
	plain, tagged := s.sSubscribe("redsync:released{a}"), s.sSubscribe("redsync:released:{t}:b")
	if _, err := ParseMultiRelease(s.run(MultiRelease, []string{"a", "{t}:b"}, "v", "redsync:released:", "", "", "redsync:released")); err != nil {
		t.Fatal(err)
	}
	for _, heard := range []<-chan string{plain, tagged} {
		if msg := <-heard; msg != "" {
			t.Errorf("announced %q, want an empty message", msg)
		}
	}
	s.set("{s}:permit:0", "v", time.Minute)
	announced := s.sSubscribe("redsync:released:{s}:permits")
	if _, err := ParseMultiRelease(s.run(MultiRelease, []string{"{s}:permit:0"}, "v", "redsync:released:", "{s}:permits", "redsync:released:{s}:permits", "redsync:released")); err != nil {
		t.Fatal(err)
	}
	if msg := <-announced; msg != "" {
		t.Errorf("announced %q, want an empty message", msg)
	}
}
