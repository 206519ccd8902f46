package redsyncprom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync"
	redsyncprom "github.com/quorumlock/redsync/contrib/prometheus"
	"github.com/quorumlock/redsync/internal/observertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// observedRun runs the script run with an Observer of a new registry, and
// returns the registry.
func observedRun(t *testing.T, run func(testing.TB, context.Context, redsync.Observer)) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	obs, err := redsyncprom.New(reg)
	must(t, err)
	run(t, context.Background(), obs)
	return reg
}

// The counters of observertest.Run are known exactly.
func TestObserverCountsAScriptedRun(t *testing.T) {
	reg := observedRun(t, observertest.Run)

	const want = `
# HELP redsync_operations_total Lock, Unlock and Extend calls, and extensions by KeepAlive (op=keepalive), by outcome.
# TYPE redsync_operations_total counter
redsync_operations_total{op="extend",outcome="ok"} 1
redsync_operations_total{op="keepalive",outcome="taken"} 1
redsync_operations_total{op="lock",outcome="ok"} 2
redsync_operations_total{op="lock",outcome="taken"} 1
redsync_operations_total{op="unlock",outcome="ok"} 1
redsync_operations_total{op="unlock",outcome="taken"} 1
# HELP redsync_lock_attempts_total Attempts to acquire a lock (one SET on every server), by outcome.
# TYPE redsync_lock_attempts_total counter
redsync_lock_attempts_total{outcome="ok"} 2
redsync_lock_attempts_total{outcome="taken"} 1
# HELP redsync_locks_lost_total Locks kept alive by KeepAlive that could no longer be proven held.
# TYPE redsync_locks_lost_total counter
redsync_locks_lost_total 1
# HELP redsync_node_replies_total Replies of each server (node: its index in the pools), by outcome; timeout: no reply within the per-server deadline; not_sent: not sent to a backlogged server.
# TYPE redsync_node_replies_total counter
redsync_node_replies_total{node="0",op="extend",outcome="ok"} 1
redsync_node_replies_total{node="0",op="keepalive",outcome="refused"} 1
redsync_node_replies_total{node="0",op="lock",outcome="ok"} 2
redsync_node_replies_total{node="0",op="lock",outcome="refused"} 1
redsync_node_replies_total{node="0",op="unlock",outcome="ok"} 1
redsync_node_replies_total{node="0",op="unlock",outcome="refused"} 1
redsync_node_replies_total{node="1",op="extend",outcome="ok"} 1
redsync_node_replies_total{node="1",op="keepalive",outcome="refused"} 1
redsync_node_replies_total{node="1",op="lock",outcome="ok"} 2
redsync_node_replies_total{node="1",op="lock",outcome="refused"} 1
redsync_node_replies_total{node="1",op="unlock",outcome="ok"} 1
redsync_node_replies_total{node="1",op="unlock",outcome="refused"} 1
redsync_node_replies_total{node="2",op="extend",outcome="error"} 1
redsync_node_replies_total{node="2",op="keepalive",outcome="error"} 1
redsync_node_replies_total{node="2",op="lock",outcome="error"} 3
redsync_node_replies_total{node="2",op="unlock",outcome="error"} 2
`
	must(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"redsync_operations_total", "redsync_lock_attempts_total", "redsync_locks_lost_total", "redsync_node_replies_total"))

	// Durations vary: the histograms are checked by their sample counts.
	counts := sampleCounts(t, reg)
	for series, n := range map[string]uint64{
		`redsync_operation_duration_seconds{op="lock",outcome="ok"}`:         2,
		`redsync_operation_duration_seconds{op="lock",outcome="taken"}`:      1,
		`redsync_operation_duration_seconds{op="extend",outcome="ok"}`:       1,
		`redsync_operation_duration_seconds{op="keepalive",outcome="taken"}`: 1,
		`redsync_operation_duration_seconds{op="unlock",outcome="ok"}`:       1,
		`redsync_operation_duration_seconds{op="unlock",outcome="taken"}`:    1,
		`redsync_lock_held_seconds{}`:                                        2,
		`redsync_lock_validity_seconds{op="lock"}`:                           2,
		`redsync_lock_validity_seconds{op="extend"}`:                         1,
		`redsync_node_latency_seconds{node="0",op="lock"}`:                   3,
		`redsync_node_latency_seconds{node="2",op="lock"}`:                   3,
		`redsync_node_latency_seconds{node="2",op="unlock"}`:                 2,
	} {
		if counts[series] != n {
			t.Errorf("%s has %d samples, want %d", series, counts[series], n)
		}
	}
	if n := testutil.CollectAndCount(reg, "redsync_node_latency_seconds"); n != 12 {
		t.Errorf("%d node latency series, want 12 (3 nodes, 4 ops)", n)
	}
}

// sampleCounts returns the sample count of every histogram series in reg,
// by metric name and labels in Prometheus' notation.
func sampleCounts(t *testing.T, reg prometheus.Gatherer) map[string]uint64 {
	t.Helper()
	families, err := reg.Gather()
	must(t, err)
	counts := map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetHistogram() == nil {
				continue
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			counts[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetHistogram().GetSampleCount()
		}
	}
	return counts
}

func TestNameLabelIsOptIn(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	obs, err := redsyncprom.New(reg, redsyncprom.WithNameLabel(), redsyncprom.WithNamespace("locks"))
	must(t, err)
	observertest.Run(t, context.Background(), obs)

	const want = `
# HELP locks_lock_attempts_total Attempts to acquire a lock (one SET on every server), by outcome.
# TYPE locks_lock_attempts_total counter
locks_lock_attempts_total{name="orders",outcome="ok"} 1
locks_lock_attempts_total{name="orders",outcome="taken"} 1
locks_lock_attempts_total{name="reports",outcome="ok"} 1
# HELP locks_locks_lost_total Locks kept alive by KeepAlive that could no longer be proven held.
# TYPE locks_locks_lost_total counter
locks_locks_lost_total{name="reports"} 1
`
	must(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "locks_lock_attempts_total", "locks_locks_lost_total"))
	// Server metrics are per server, never per name.
	counts := sampleCounts(t, reg)
	if n := counts[`locks_node_latency_seconds{node="0",op="lock"}`]; n != 3 {
		t.Errorf("node latency of node 0 has %d samples, want 3", n)
	}
}

func TestNewRefusesABadRegisterer(t *testing.T) {
	if _, err := redsyncprom.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	// Another collector holds one of the names: New fails and leaves
	// nothing of its own registered.
	must(t, reg.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "redsync_locks_lost_total", Help: "taken"})))
	if _, err := redsyncprom.New(reg); err == nil {
		t.Fatal("New on a registry with a clashing metric succeeded")
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 1 {
		t.Errorf("%d metrics left registered (%v), want only the clashing one", n, err)
	}
}

// A Semaphore's and a MultiMutex's operations have op labels of their own
// (acquire, release, multilock, multiunlock); a Lease's Extend is extend.
func TestObserverLabelsTheOtherPrimitives(t *testing.T) {
	reg := observedRun(t, observertest.RunPrimitives)

	const want = `
# HELP redsync_operations_total Lock, Unlock and Extend calls, and extensions by KeepAlive (op=keepalive), by outcome.
# TYPE redsync_operations_total counter
redsync_operations_total{op="acquire",outcome="ok"} 1
redsync_operations_total{op="acquire",outcome="taken"} 1
redsync_operations_total{op="extend",outcome="ok"} 1
redsync_operations_total{op="multilock",outcome="ok"} 1
redsync_operations_total{op="multiunlock",outcome="ok"} 1
redsync_operations_total{op="release",outcome="ok"} 1
`
	must(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "redsync_operations_total"))
	counts := sampleCounts(t, reg)
	for series, n := range map[string]uint64{
		`redsync_lock_validity_seconds{op="acquire"}`:             1,
		`redsync_lock_validity_seconds{op="multilock"}`:           1,
		`redsync_node_latency_seconds{node="0",op="acquire"}`:     2,
		`redsync_node_latency_seconds{node="2",op="release"}`:     1,
		`redsync_node_latency_seconds{node="1",op="multilock"}`:   1,
		`redsync_node_latency_seconds{node="1",op="multiunlock"}`: 1,
	} {
		if counts[series] != n {
			t.Errorf("%s has %d samples, want %d", series, counts[series], n)
		}
	}
	replies, err := testutil.GatherAndCount(reg, "redsync_node_replies_total")
	must(t, err)
	// acquire: ok and refused on 0 and 1, error on 2; the four other
	// ops: ok on 0 and 1, error on 2.
	if replies != 5+4*3 {
		t.Errorf("%d node reply series, want 17", replies)
	}
}

// The operations of an RWMutex and an Election are labelled by their own
// op, and a read or write lock released tells how long it was held.
func TestTheOpsOfAnRWMutexAndAnElectionHaveTheirOwnLabels(t *testing.T) {
	reg := observedRun(t, func(_ testing.TB, ctx context.Context, obs redsync.Observer) {
		for _, op := range []redsync.Op{redsync.OpRLock, redsync.OpRUnlock, redsync.OpRExtend, redsync.OpRWLock,
			redsync.OpRWUnlock, redsync.OpRWExtend, redsync.OpCampaign, redsync.OpResign, redsync.OpProclaim} {
			ctx := obs.Start(ctx, redsync.StartEvent{Op: op, Name: "catalog"})
			obs.Node(ctx, redsync.NodeEvent{Op: op, Name: "catalog", Outcome: redsync.NodeOK, Latency: time.Millisecond})
			obs.Done(ctx, redsync.DoneEvent{Op: op, Name: "catalog", Held: time.Second})
		}
	})
	const want = `
# HELP redsync_operations_total Lock, Unlock and Extend calls, and extensions by KeepAlive (op=keepalive), by outcome.
# TYPE redsync_operations_total counter
redsync_operations_total{op="campaign",outcome="ok"} 1
redsync_operations_total{op="proclaim",outcome="ok"} 1
redsync_operations_total{op="resign",outcome="ok"} 1
redsync_operations_total{op="rextend",outcome="ok"} 1
redsync_operations_total{op="rlock",outcome="ok"} 1
redsync_operations_total{op="runlock",outcome="ok"} 1
redsync_operations_total{op="rwextend",outcome="ok"} 1
redsync_operations_total{op="rwlock",outcome="ok"} 1
redsync_operations_total{op="rwunlock",outcome="ok"} 1
`
	must(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "redsync_operations_total"))
	counts := sampleCounts(t, reg)
	if n := counts[`redsync_lock_held_seconds{}`]; n != 2 {
		t.Errorf("held has %d samples, want 2 (RUnlock and the write lock's Unlock)", n)
	}
	if n := counts[`redsync_node_latency_seconds{node="0",op="proclaim"}`]; n != 1 {
		t.Errorf("node latency of proclaim has %d samples, want 1", n)
	}
}
