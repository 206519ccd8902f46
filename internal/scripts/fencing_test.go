package scripts

import (
	"strconv"
	"testing"
	"time"
)

const (
	fenceKey            = "{lock}:redsync:fence"
	counterMillis int64 = 86_400_000
)

// fencedCase is the state before a fenced acquire and what it must do.
type fencedCase struct {
	name        string
	held        string // the lock key's value before ("" missing)
	counter     string // the counter's value before ("" missing)
	hashCounter bool   // the counter key is a hash
	placeholder string // ARGV[3]
	acquired    bool
	notCounter  bool
}

var fencedCases = []fencedCase{
	{name: "missing, no counter", acquired: true},
	{name: "missing, a counter", counter: "41", acquired: true},
	{name: "placeholder taken", held: placeholder, placeholder: placeholder, acquired: true},
	{name: "placeholder refused without ARGV[3]", held: placeholder},
	{name: "held by another", held: "other", counter: "41"},
	{name: "counter key is a hash", hashCounter: true, notCounter: true},
	{name: "counter key is not a number", counter: "a lock value", notCounter: true},
	{name: "counter key is too long", counter: "12345678901234567890", notCounter: true},
}

// prepare sets up the server for c.
func (s *server) prepare(c fencedCase) {
	s.t.Helper()
	s.flush()
	if c.held != "" {
		s.set(lockKey, c.held, time.Hour)
	}
	if c.counter != "" {
		s.set(fenceKey, c.counter, 0)
	}
	if c.hashCounter {
		if err := s.rdb.HSet(s.ctx, fenceKey, "f", "v").Err(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// clockMicros returns the server's clock in microseconds.
func (s *server) clockMicros() uint64 {
	s.t.Helper()
	now, err := s.rdb.Time(s.ctx).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	return uint64(now.UnixMicro())
}

// checkRefused checks what a fenced acquire that did not set the key left.
func (s *server) checkRefused(c fencedCase, got FencedAcquireReply) {
	s.t.Helper()
	if got.Acquired || got.NotCounter != c.notCounter || got.Stored != 0 || got.Counter != 0 || got.Clock != 0 {
		s.t.Errorf("reply %+v, want not acquired (NotCounter %v)", got, c.notCounter)
	}
	if c.notCounter && got.TTL != -1 {
		s.t.Errorf("TTL %v with NotCounter, want -1", got.TTL)
	}
	if !c.notCounter && (got.TTL <= time.Hour-time.Minute || got.TTL > time.Hour) {
		s.t.Errorf("TTL %v, want the holder's, near an hour", got.TTL)
	}
	if value, _ := s.get(lockKey); value != c.held {
		s.t.Errorf("the key holds %q, want %q untouched", value, c.held)
	}
	if !c.hashCounter {
		if counter, _ := s.get(fenceKey); counter != c.counter {
			s.t.Errorf("the counter holds %q, want %q untouched", counter, c.counter)
		}
	}
}

func TestFencedAcquireOnRedis(t *testing.T) {
	s := newServer(t)
	for _, c := range fencedCases {
		t.Run(c.name, func(t *testing.T) {
			s := s.in(t)
			s.prepare(c)
			before := s.clockMicros()
			got, err := ParseFencedAcquire(s.run(FencedAcquire, []string{lockKey, fenceKey}, "mine", int64(9000), c.placeholder))
			if err != nil {
				t.Fatal(err)
			}
			if !c.acquired {
				s.checkRefused(c, got)
				return
			}
			want, _ := strconv.ParseUint(c.counter, 10, 64)
			if !got.Acquired || got.TTL != -1 || got.Stored != 0 || got.Counter != want || got.Clock < before || got.Clock > s.clockMicros() {
				t.Errorf("reply %+v, want acquired with the counter %d and the clock", got, want)
			}
			if value, ttl := s.get(lockKey); value != "mine" || ttl <= 0 || ttl > 9*time.Second {
				t.Errorf("the key holds %q for %v, want mine for at most 9s", value, ttl)
			}
			if counter, _ := s.get(fenceKey); counter != c.counter {
				t.Errorf("the counter holds %q, want %q: only the write-back writes it", counter, c.counter)
			}
		})
	}
}

func TestFencedAcquireOneOnRedis(t *testing.T) {
	s := newServer(t)
	cases := append([]fencedCase{
		// A counter ahead of the clock (5e15 µs is in 2128): the token is
		// one more.
		{name: "a counter ahead of the clock", counter: "5000000000000000", acquired: true},
	}, fencedCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.in(t)
			s.prepare(c)
			before := s.clockMicros()
			got, err := ParseFencedAcquire(s.run(FencedAcquireOne, []string{lockKey, fenceKey}, "mine", int64(9000), c.placeholder, counterMillis))
			if err != nil {
				t.Fatal(err)
			}
			if !c.acquired {
				s.checkRefused(c, got)
				return
			}
			if !got.Acquired || got.TTL != -1 || got.Counter != 0 || got.Clock != 0 {
				t.Errorf("reply %+v, want acquired with a stored token", got)
			}
			if c.counter == "5000000000000000" {
				if got.Stored != 5000000000000001 {
					t.Errorf("token %d, want the counter plus one", got.Stored)
				}
			} else if got.Stored < before || got.Stored > s.clockMicros() {
				t.Errorf("token %d, want the server's clock (%d or later)", got.Stored, before)
			}
			counter, ttl := s.get(fenceKey)
			if counter != strconv.FormatUint(got.Stored, 10) || ttl <= 0 || ttl > time.Duration(counterMillis)*time.Millisecond {
				t.Errorf("the counter holds %q for %v, want the token %d", counter, ttl, got.Stored)
			}
			if value, _ := s.get(lockKey); value != "mine" {
				t.Errorf("the key holds %q, want mine", value)
			}
		})
	}
}

func TestFenceWriteBackOnRedis(t *testing.T) {
	s := newServer(t)
	const token = "1000"
	tests := []struct {
		fencedCase
		want        FenceWriteBackReply
		wantCounter string
	}{
		{fencedCase{name: "held, no counter", held: "mine"}, FenceWriteBackStored, token},
		{fencedCase{name: "held, a lower counter", held: "mine", counter: "999"}, FenceWriteBackStored, token},
		{fencedCase{name: "held, a higher counter", held: "mine", counter: "2000"}, FenceWriteBackStored, "2000"},
		{fencedCase{name: "held by another", held: "other", counter: "999"}, FenceWriteBackNotHeld, "999"},
		{fencedCase{name: "missing"}, FenceWriteBackNotHeld, ""},
		{fencedCase{name: "counter key is a lock", held: "mine", counter: "a lock value"}, FenceWriteBackNotCounter, "a lock value"},
		{fencedCase{name: "counter key is a hash", held: "mine", hashCounter: true}, FenceWriteBackNotCounter, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			s.prepare(tt.fencedCase)
			got, err := ParseFenceWriteBack(s.run(FenceWriteBack, []string{lockKey, fenceKey}, "mine", token, counterMillis))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("reply %d, want %d", got, tt.want)
			}
			if tt.hashCounter {
				return
			}
			counter, ttl := s.get(fenceKey)
			if counter != tt.wantCounter {
				t.Errorf("the counter holds %q, want %q", counter, tt.wantCounter)
			}
			kept := ttl > 0 && ttl <= time.Duration(counterMillis)*time.Millisecond
			if counter != "" && kept != (got == FenceWriteBackStored) {
				t.Errorf("the counter lives %v after reply %d", ttl, got)
			}
		})
	}
}

func TestParseFencedAcquire(t *testing.T) {
	tests := []struct {
		reply any
		want  FencedAcquireReply
	}{
		{int64(-3), FencedAcquireReply{TTL: -1, NotCounter: true}},
		{int64(-1), FencedAcquireReply{TTL: -1}},
		{int64(250), FencedAcquireReply{TTL: 250 * time.Millisecond}},
		{[]any{int64(7)}, FencedAcquireReply{Acquired: true, TTL: -1, Stored: 7}},
		{[]any{"", "10", "5"}, FencedAcquireReply{Acquired: true, TTL: -1, Clock: 10_000_005}},
		{[]any{[]byte("41"), []byte("10"), []byte("5")}, FencedAcquireReply{Acquired: true, TTL: -1, Counter: 41, Clock: 10_000_005}},
		// A counter key overwritten since: the clock still counts.
		{[]any{"x", "10", "5"}, FencedAcquireReply{Acquired: true, TTL: -1, Clock: 10_000_005}},
	}
	for _, tt := range tests {
		if got, err := ParseFencedAcquire(tt.reply); got != tt.want || err != nil {
			t.Errorf("ParseFencedAcquire(%#v) = %+v, %v; want %+v", tt.reply, got, err, tt.want)
		}
	}
	for want, reply := range map[string]any{
		"redsync: unexpected reply [0] to the fenced acquire script":                []any{int64(0)},
		"redsync: unexpected reply [1] to the fenced acquire script":                []any{"1"},
		"redsync: unexpected reply string to the fenced acquire script":             "OK",
		"redsync: unexpected reply []interface {} to the fenced acquire script":     []any{"", "1"},
		"redsync: unexpected int64 in the reply to the fenced acquire script":       []any{"", int64(1), "2"},
		`redsync: unreadable number "" in the reply to the fenced acquire script`:   []any{"", "", "2"},
		`redsync: unreadable number "-2" in the reply to the fenced acquire script`: []any{"1", "1", "-2"},
	} {
		got, err := ParseFencedAcquire(reply)
		wantError(t, err, want)
		if got.Acquired {
			t.Errorf("ParseFencedAcquire(%#v) acquired", reply)
		}
	}
}

func TestParseFenceWriteBackRefusesOtherReplies(t *testing.T) {
	for _, reply := range []any{int64(-1), int64(2), "OK", nil} {
		if _, err := ParseFenceWriteBack(reply); err == nil {
			t.Errorf("ParseFenceWriteBack(%#v) gave no error", reply)
		}
	}
}

func TestParseCounterAndClock(t *testing.T) {
	tests := []struct {
		reply          any
		counter, clock uint64
	}{
		{[]any{"41", "1795696031", "978940"}, 41, 1795696031978940},
		{[]any{[]byte(""), []byte("2"), []byte("3")}, 0, 2000003}, // no counter yet
		// A counter overwritten by somebody else leaves the clock as the
		// floor.
		{[]any{"not a number", "2", "3"}, 0, 2000003},
	}
	for _, tt := range tests {
		counter, clock, err := parseCounterAndClock(tt.reply)
		if counter != tt.counter || clock != tt.clock || err != nil {
			t.Errorf("parseCounterAndClock(%#v) = %d, %d, %v; want %d, %d", tt.reply, counter, clock, err, tt.counter, tt.clock)
		}
	}
	for _, bad := range []any{nil, "OK", []any{"1", "2"}, []any{"1", "x", "3"}, []any{"1", 2.5, "3"}} {
		if _, _, err := parseCounterAndClock(bad); err == nil {
			t.Errorf("parseCounterAndClock(%#v) gave no error", bad)
		}
	}
}
