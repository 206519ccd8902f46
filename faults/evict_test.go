//go:build linux

package faults

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestEvictionLetsASecondHolderIn runs the eviction scenarios: servers
// with a small maxmemory and an evicting policy, which the preflight
// reports, evict a held lock's key under other writes, and a second
// holder acquires while the first holds; the checker finds the overlap.
func TestEvictionLetsASecondHolderIn(t *testing.T) {
	requireRedis(t)
	for _, tt := range []struct {
		kind   ScenarioKind
		policy string
	}{{EvictionLRU, "allkeys-lru"}, {EvictionTTL, "volatile-ttl"}} {
		t.Run(string(tt.kind), func(t *testing.T) {
			var log bytes.Buffer
			res, err := RunScenario(context.Background(), tt.kind, &log)
			t.Log(log.String())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Preflight) != 3 {
				t.Errorf("the preflight reported eviction on %d servers, want 3: %v", len(res.Preflight), res.Preflight)
			}
			for _, f := range res.Preflight {
				if !strings.Contains(f, "maxmemory-policy "+tt.policy) {
					t.Errorf("preflight finding %q does not name the policy", f)
				}
			}
			if res.SecondErr != "" {
				t.Fatalf("the second holder did not acquire: %s", res.SecondErr)
			}
			if len(res.Check.Overlaps) != 1 {
				t.Fatalf("the checker found %d overlaps, want 1: eviction must break the lock", len(res.Check.Overlaps))
			}
			if res.ValidityLeft < 20*time.Second {
				t.Errorf("the second holder acquired with %v of the first's validity left; eviction takes a held key at once", res.ValidityLeft)
			}
			if got := res.Check.Overlaps[0].Fencing; got != FencingOrdered {
				t.Errorf("fencing tokens of the overlapping holders: %q, want %q", got, FencingOrdered)
			}
		})
	}
}
