package scripts

import (
	"testing"
	"time"
)

func TestExtendOnRedis(t *testing.T) {
	s := newServer(t)
	const expiryMillis = int64(8000)
	tests := []struct {
		name      string
		orSet     bool
		held      string
		want      ExtendReply
		wantValue string
	}{
		{name: "Extend held", held: "mine", want: ExtendExtended, wantValue: "mine"},
		{name: "Extend other value", held: "other", want: ExtendRefused, wantValue: "other"},
		{name: "Extend missing", want: ExtendRefused},
		{name: "ExtendOrSet held", orSet: true, held: "mine", want: ExtendExtended, wantValue: "mine"},
		{name: "ExtendOrSet other value", orSet: true, held: "other", want: ExtendRefused, wantValue: "other"},
		{name: "ExtendOrSet missing", orSet: true, want: ExtendSet, wantValue: "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			s.flush()
			if tt.held != "" {
				s.set(lockKey, tt.held, time.Hour)
			}
			script := Extend
			if tt.orSet {
				script = ExtendOrSet
			}
			got, err := ParseExtend(s.run(script, []string{lockKey}, "mine", expiryMillis))
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
			newExpiry := ttl > 0 && ttl <= time.Duration(expiryMillis)*time.Millisecond
			if value != "" && newExpiry != (got != ExtendRefused) {
				t.Errorf("the key lives %v after reply %d", ttl, got)
			}
		})
	}
}

func TestParseExtendRefusesOtherReplies(t *testing.T) {
	for _, reply := range []any{int64(-1), int64(3), "OK", nil} {
		if _, err := ParseExtend(reply); err == nil {
			t.Errorf("ParseExtend(%#v) gave no error", reply)
		}
	}
	_, err := ParseExtend(int64(3))
	wantError(t, err, "redsync: unexpected reply 3 to the extend script")
}
