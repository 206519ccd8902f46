//go:build linux

package faults

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

// handoffPlaceholder is the value the library's release script leaves in
// a released key for 50 ms, for the waiters it told (see Marker and
// MaxGrace in internal/handoff). It is not a lock; an expired one is gone
// by the time orphans are looked for.
const handoffPlaceholder = "redsync:handoff"

// placeholderLife bounds how long a hand-off placeholder lives.
const placeholderLife = 50 * time.Millisecond

// fenceCounterSuffix ends the key of a name's fencing counter, and
// fenceCounterLife is how long the library keeps a counter after its last
// write (see redsync.WithFencing). A counter is meant to outlive the lock;
// only one without an expiry, or with a longer one, is an orphan.
const (
	fenceCounterSuffix = ":redsync:fence"
	fenceCounterLife   = 24 * time.Hour
)

// queueSuffixes end the keys of a name's fleet queue (handoff.QueueKeys),
// and queueLife is how long the library keeps them after a waiter's last
// renewal (three leases of 2 s): a waiter whose retire did not reach a
// server (cut off, stalled) leaves its entry to expire. Only one without
// an expiry, or with a longer one, is an orphan.
var queueSuffixes = []string{":redsync:queue", ":redsync:waiters"}

// leaderRecordSuffix ends the key of an Election's leader record, which
// lives leaderRecordLife after its last write (the proclaimed value of
// the last leader, kept beside the lock, as the fencing counter is).
const (
	leaderRecordSuffix = ":redsync:leader"
	leaderRecordLife   = 24 * time.Hour
)

const queueLife = 6 * time.Second

// An Orphan is a key left on a server after every client had unlocked what
// it held and waited for its requests.
type Orphan struct {
	Server int    `json:"server"`
	Key    string `json:"key"`
	Value  string `json:"value"`
	// PTTL is the key's remaining time to live in milliseconds (-1: none).
	PTTL int64 `json:"pttl_ms"`
	// Holder is the holding whose value the key holds, if any holder
	// recorded it (a failed try's value is recorded by nobody).
	Holder *HoldingRef `json:"holder,omitempty"`
	// Placeholder is set when the key holds the hand-off placeholder,
	// which should have expired long before.
	Placeholder bool `json:"placeholder,omitempty"`
}

// findOrphans lists every key on every server, talking to the servers
// directly (not through the proxies).
func findOrphans(ctx context.Context, servers []*redistest.Server, byValue map[string]*Holding) ([]Orphan, error) {
	var out []Orphan
	for i, s := range servers {
		rc := s.NewClient()
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil {
			_ = rc.Close()
			return nil, fmt.Errorf("faults: listing the keys of server %d: %w", i, err)
		}
		for _, key := range keys {
			o := Orphan{Server: i, Key: key}
			o.Value, _ = rc.Get(ctx, key).Result()
			o.Placeholder = o.Value == handoffPlaceholder
			if ttl, err := rc.PTTL(ctx, key).Result(); err == nil {
				o.PTTL = ttl.Milliseconds()
				if ttl < 0 {
					o.PTTL = -1
				}
			}
			if strings.HasSuffix(key, fenceCounterSuffix) && o.PTTL > 0 && o.PTTL <= fenceCounterLife.Milliseconds() {
				continue
			}
			if strings.HasSuffix(key, leaderRecordSuffix) && o.PTTL > 0 && o.PTTL <= leaderRecordLife.Milliseconds() {
				continue
			}
			if hasAnySuffix(key, queueSuffixes) && o.PTTL > 0 && o.PTTL <= queueLife.Milliseconds() {
				continue
			}
			if h := byValue[o.Value]; h != nil {
				ref := refOf(h)
				o.Holder = &ref
			}
			out = append(out, o)
		}
		_ = rc.Close()
	}
	return out, nil
}

// hasAnySuffix reports whether s ends with one of suffixes.
func hasAnySuffix(s string, suffixes []string) bool {
	for _, suffix := range suffixes {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}
