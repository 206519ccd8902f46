package valkeygo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
)

// TestCheckAsksThroughTheAdapter runs the preflight through the adapter
// (RESP3: CONFIG GET replies with a map) on a server that evicts and
// takes only RDB snapshots, reached by two pools.
func TestCheckAsksThroughTheAdapter(t *testing.T) {
	s := redistest.StartWithArgs(t, 1, "--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru", "--save", "60 1")[0]
	rs := redsync.New(newPool(t, s.Addr()), newPool(t, s.Addr()))
	defer rs.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	report, err := rs.Check(ctx)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	t.Logf("report:\n%s", report)
	want := [][]redsync.FindingKind{
		{redsync.FindingEviction, redsync.FindingNoPersistence},
		{redsync.FindingSameServer, redsync.FindingEviction, redsync.FindingNoPersistence},
	}
	for i, server := range report.Servers {
		var got []redsync.FindingKind
		for _, f := range server.Findings {
			got = append(got, f.Kind)
		}
		if len(got) != len(want[i]) {
			t.Fatalf("node %d: findings %v, want %v", i, got, want[i])
		}
		for j := range got {
			if got[j] != want[i][j] {
				t.Fatalf("node %d: findings %v, want %v", i, got, want[i])
			}
		}
		if last := server.Findings[len(got)-1].Detail; !strings.Contains(last, `save "60 1"`) {
			t.Errorf("node %d: %q does not tell the save setting (CONFIG GET)", i, last)
		}
		if server.RTT <= 0 {
			t.Errorf("node %d: the clock was not read", i)
		}
	}
}
