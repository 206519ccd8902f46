package scripts

import (
	"testing"
	"time"
)

const (
	lockKey     = "lock"
	placeholder = "placeholder"
	graceMillis = int64(5000)
)

func TestReleaseOnRedis(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name      string
		held      string // the key's value before, "" for missing
		listeners int
		stale     int64
		oom       bool
		want      ReleaseReply
		wantValue string // the key's value after, "" for deleted
	}{
		{name: "missing", stale: 0, want: ReleaseMissing},
		{name: "other value", held: "other", want: ReleaseOtherValue, wantValue: "other"},
		{name: "nobody listens", held: "mine", want: ReleaseReleased},
		{name: "a waiter heard it", held: "mine", listeners: 1, want: ReleaseReleased, wantValue: placeholder},
		{name: "only stale listeners heard it", held: "mine", listeners: 1, stale: 1, want: ReleaseReleased},
		{name: "never reserve", held: "mine", listeners: 2, stale: -1, want: ReleaseReleased},
		{name: "out of memory", held: "mine", listeners: 1, oom: true, want: ReleaseReleased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			s.flush()
			// A channel per case: a subscription closed by the case
			// before may still count for a moment.
			channel := "channel:" + tt.name
			if tt.held != "" {
				s.set(lockKey, tt.held, time.Minute)
			}
			s.listen(channel, tt.listeners)
			if tt.oom {
				defer s.outOfMemory()()
			}
			got, err := ParseRelease(s.run(Release, []string{lockKey}, "mine", channel, placeholder, graceMillis, tt.stale))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("reply %d, want %d", got, tt.want)
			}
			value, ttl := s.get(lockKey)
			if value != tt.wantValue {
				t.Errorf("the key holds %q, want %q", value, tt.wantValue)
			}
			if value == placeholder && (ttl <= 0 || ttl > time.Duration(graceMillis)*time.Millisecond) {
				t.Errorf("the placeholder lives %v, want at most %d ms", ttl, graceMillis)
			}
		})
	}
}

func TestHandOverOnRedis(t *testing.T) {
	s := newServer(t)
	const waiter = "waiter"
	const waiterMillis = int64(7000)
	tests := []struct {
		name      string
		held      string
		listeners int
		oom       bool
		want      ReleaseReply
		wantValue string
	}{
		{name: "handed already", held: waiter, listeners: 2, want: HandOverHanded, wantValue: waiter},
		{name: "missing", want: ReleaseMissing},
		{name: "other value", held: "other", want: ReleaseOtherValue, wantValue: "other"},
		{name: "nobody listens", held: "mine", want: HandOverHanded, wantValue: waiter},
		{name: "only the releaser's process listens", held: "mine", listeners: 1, want: HandOverHanded, wantValue: waiter},
		{name: "another process listens", held: "mine", listeners: 2, want: ReleaseReleased, wantValue: placeholder},
		{name: "out of memory", held: "mine", listeners: 1, oom: true, want: ReleaseReleased},
		{name: "out of memory, another process listens", held: "mine", listeners: 2, oom: true, want: ReleaseReleased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			s.flush()
			// A channel per case: a subscription closed by the case
			// before may still count for a moment.
			channel := "channel:" + tt.name
			if tt.held != "" {
				s.set(lockKey, tt.held, time.Minute)
			}
			s.listen(channel, tt.listeners)
			if tt.oom {
				defer s.outOfMemory()()
			}
			got, err := ParseHandOver(s.run(HandOver, []string{lockKey}, "mine", channel, placeholder, graceMillis, waiter, waiterMillis))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("reply %d, want %d", got, tt.want)
			}
			value, ttl := s.get(lockKey)
			if value != tt.wantValue {
				t.Errorf("the key holds %q, want %q", value, tt.wantValue)
			}
			switch {
			case tt.held == waiter:
				// Untouched: a request sent again.
				if ttl <= time.Duration(waiterMillis)*time.Millisecond {
					t.Errorf("the key's expiry was reset to %v", ttl)
				}
			case value == waiter && (ttl <= 0 || ttl > time.Duration(waiterMillis)*time.Millisecond):
				t.Errorf("the waiter's key lives %v, want at most %d ms", ttl, waiterMillis)
			case value == placeholder && (ttl <= 0 || ttl > time.Duration(graceMillis)*time.Millisecond):
				t.Errorf("the placeholder lives %v, want at most %d ms", ttl, graceMillis)
			}
		})
	}
}

func TestParseReleaseRefusesOtherReplies(t *testing.T) {
	for _, reply := range []any{int64(2), int64(-2), "OK", nil, 1} {
		_, err := ParseRelease(reply)
		if err == nil {
			t.Errorf("ParseRelease(%#v) gave no error", reply)
		}
	}
	_, err := ParseRelease(int64(2))
	wantError(t, err, "redsync: unexpected reply 2 to the release script")
	for _, reply := range []any{int64(3), int64(-2), []byte("1")} {
		if _, err := ParseHandOver(reply); err == nil {
			t.Errorf("ParseHandOver(%#v) gave no error", reply)
		}
	}
	_, err = ParseHandOver("x")
	wantError(t, err, `redsync: unexpected reply "x" to the hand-over script`)
	for want := ReleaseMissing; want <= HandOverHanded; want++ {
		if got, err := ParseHandOver(int64(want)); got != want || err != nil {
			t.Errorf("ParseHandOver(%d) = %d, %v", want, got, err)
		}
	}
}
