package scripts

import (
	"testing"
	"time"
)

// placeholder is a value that an acquire after a wait takes over.
const placeholder = "placeholder"

func TestAcquireAfterWaitOnRedis(t *testing.T) {
	s := newServer(t)
	const expiryMillis = int64(9000)
	tests := []struct {
		name      string
		held      string
		ttl       time.Duration // of the key held before; 0: no expiry
		want      AcquireReply
		wantValue string
	}{
		{name: "missing", want: AcquireReply{Acquired: true, TTL: -1}, wantValue: "mine"},
		{name: "placeholder", held: placeholder, ttl: time.Second, want: AcquireReply{Acquired: true, TTL: -1}, wantValue: "mine"},
		{name: "held by another", held: "other", ttl: time.Hour, wantValue: "other"},
		{name: "held by another without expiry", held: "other", want: AcquireReply{TTL: -1}, wantValue: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			s.flush()
			if tt.held != "" {
				s.set(lockKey, tt.held, tt.ttl)
			}
			got, err := ParseAcquireAfterWait(s.run(AcquireAfterWait, []string{lockKey}, "mine", expiryMillis, placeholder))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ttl == time.Hour {
				// The remaining time, a little less than the hour.
				if got.Acquired || got.TTL <= time.Hour-time.Minute || got.TTL > time.Hour {
					t.Errorf("reply %+v, want not acquired with a TTL near %v", got, tt.ttl)
				}
			} else if got != tt.want {
				t.Errorf("reply %+v, want %+v", got, tt.want)
			}
			value, ttl := s.get(lockKey)
			if value != tt.wantValue {
				t.Errorf("the key holds %q, want %q", value, tt.wantValue)
			}
			if got.Acquired && (ttl <= 0 || ttl > time.Duration(expiryMillis)*time.Millisecond) {
				t.Errorf("the key lives %v, want at most %d ms", ttl, expiryMillis)
			}
		})
	}
}

func TestParseAcquireAfterWait(t *testing.T) {
	tests := []struct {
		reply any
		want  AcquireReply
	}{
		{"OK", AcquireReply{Acquired: true, TTL: -1}},
		{[]byte("OK"), AcquireReply{Acquired: true, TTL: -1}},
		{"QUEUED", AcquireReply{TTL: -1}},
		{int64(-2), AcquireReply{TTL: -1}},
		{int64(1500), AcquireReply{TTL: 1500 * time.Millisecond}},
	}
	for _, tt := range tests {
		if got, err := ParseAcquireAfterWait(tt.reply); got != tt.want || err != nil {
			t.Errorf("ParseAcquireAfterWait(%#v) = %+v, %v; want %+v", tt.reply, got, err, tt.want)
		}
	}
	_, err := ParseAcquireAfterWait([]any{"OK"})
	wantError(t, err, "redsync: unexpected reply []interface {} to the acquire script")
}
