package redsyncotel_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync"
	redsyncotel "github.com/quorumlock/redsync/contrib/otel"
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

// observed runs observertest.Run under a parent span named "script", with
// an Observer over an in-memory exporter and a manual metric reader.
func observed(t *testing.T, options ...redsyncotel.Option) (tracetest.SpanStubs, metricdata.ResourceMetrics) {
	t.Helper()
	return observedRun(t, observertest.Run, options...)
}

// observedRun is observed with the script run.
func observedRun(t *testing.T, run func(testing.TB, context.Context, redsync.Observer), options ...redsyncotel.Option) (tracetest.SpanStubs, metricdata.ResourceMetrics) {
	t.Helper()
	return observing(t, func(tracer trace.Tracer, obs redsync.Observer) {
		ctx, script := tracer.Start(context.Background(), "script")
		run(t, ctx, obs)
		script.End()
	}, options...)
}

// observing runs run with a tracer and an Observer over an in-memory
// exporter and a manual metric reader, and returns what they recorded.
func observing(t *testing.T, run func(tracer trace.Tracer, obs redsync.Observer), options ...redsyncotel.Option) (tracetest.SpanStubs, metricdata.ResourceMetrics) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	obs, err := redsyncotel.New(append([]redsyncotel.Option{redsyncotel.WithTracerProvider(tp), redsyncotel.WithMeterProvider(mp)}, options...)...)
	must(t, err)
	run(tp.Tracer("test"), obs)

	var rm metricdata.ResourceMetrics
	must(t, reader.Collect(context.Background(), &rm))
	return exporter.GetSpans(), rm
}

func TestSpansOfAScriptedRun(t *testing.T) {
	spans, _ := observed(t)

	// In the order they ended; the script's own span last.
	var got []string
	for _, s := range spans {
		line := spanLine(s, redsyncotel.NameKey, redsyncotel.OutcomeKey)
		if s.Status.Code == codes.Error {
			line += " (error)"
		}
		got = append(got, line)
	}
	want := []string{
		"redsync.lock orders ok",
		"redsync.lock orders taken (error)",
		"redsync.extend orders ok",
		"redsync.unlock orders ok",
		"redsync.lock reports ok",
		"redsync.keepalive reports taken (error)",
		"redsync.unlock reports taken (error)",
		"script",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("spans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	script := spans[len(spans)-1]
	for _, s := range spans[:len(spans)-1] {
		if s.Parent.SpanID() != script.SpanContext.SpanID() {
			t.Errorf("%s is not a child of the span in the operation's context", s.Name)
		}
	}
	if events := eventNames(script); fmt.Sprint(events) != "[redsync.lock_lost]" {
		t.Errorf("the span given to KeepAlive has the events %v, want the lost lock", events)
	}

	// A refused TryLock: every server's reply came before its decision.
	tryLock := spans[1]
	if got, want := fmt.Sprint(eventNames(tryLock)), "[redsync.node redsync.node redsync.node redsync.attempt exception]"; got != want {
		t.Errorf("TryLock's events %s, want %s", got, want)
	}
	var nodes []string
	for _, e := range tryLock.Events {
		if e.Name != "redsync.node" {
			continue
		}
		attrs := attribute.NewSet(e.Attributes...)
		node, _ := attrs.Value(redsyncotel.NodeKey)
		outcome, _ := attrs.Value(redsyncotel.NodeOutcomeKey)
		line := fmt.Sprintf("%d=%s", node.AsInt64(), outcome.AsString())
		if msg, ok := attrs.Value(redsyncotel.ErrorMessageKey); ok {
			line += " (" + msg.AsString() + ")"
		}
		nodes = append(nodes, line)
	}
	sort.Strings(nodes)
	if got, want := strings.Join(nodes, ", "), "0=refused, 1=refused, 2=error (LOADING Redis is loading the dataset in memory)"; got != want {
		t.Errorf("TryLock's node events: %s, want %s", got, want)
	}
	attempt := attribute.NewSet(tryLock.Events[3].Attributes...)
	if v, _ := attempt.Value(redsyncotel.OutcomeKey); v.AsString() != "taken" {
		t.Errorf("TryLock's attempt: %v", tryLock.Events[3].Attributes)
	}

	// An acquired lock: at least the quorum's replies are on the span, and
	// the attempt that acquired it; locked with fencing, its token.
	lock := spans[0]
	lockAttrs, plainAttrs := attribute.NewSet(lock.Attributes...), attribute.NewSet(spans[4].Attributes...)
	if token, ok := lockAttrs.Value(redsyncotel.TokenKey); !ok || token.AsInt64() <= 0 {
		t.Errorf("Lock with fencing: token attribute %v, %v", token.AsInt64(), ok)
	}
	if _, ok := plainAttrs.Value(redsyncotel.TokenKey); ok {
		t.Errorf("Lock without fencing has a token attribute")
	}
	names := eventNames(lock)
	if len(names) < 3 || names[len(names)-1] != "redsync.attempt" {
		t.Errorf("Lock's events %v, want the quorum's replies then the attempt", names)
	}
}

// spanLine is s's name and the values of its attributes keys, in the
// span's order.
func spanLine(s tracetest.SpanStub, keys ...attribute.Key) string {
	line := s.Name
	for _, a := range s.Attributes {
		if slices.Contains(keys, a.Key) {
			line += " " + a.Value.String()
		}
	}
	return line
}

func eventNames(s tracetest.SpanStub) []string {
	var names []string
	for _, e := range s.Events {
		names = append(names, e.Name)
	}
	return names
}

func TestMetricsOfAScriptedRun(t *testing.T) {
	_, rm := observed(t)

	sums := counterValues(t, rm)
	want := map[string]int64{
		"redsync.operations{redsync.op=extend,redsync.outcome=ok}":       1,
		"redsync.operations{redsync.op=keepalive,redsync.outcome=taken}": 1,
		"redsync.operations{redsync.op=lock,redsync.outcome=ok}":         2,
		"redsync.operations{redsync.op=lock,redsync.outcome=taken}":      1,
		"redsync.operations{redsync.op=unlock,redsync.outcome=ok}":       1,
		"redsync.operations{redsync.op=unlock,redsync.outcome=taken}":    1,
		"redsync.lock.attempts{redsync.outcome=ok}":                      2,
		"redsync.lock.attempts{redsync.outcome=taken}":                   1,
		"redsync.locks.lost{}": 1,
	}
	for _, op := range []string{"lock", "unlock", "extend", "keepalive"} {
		counts := map[string][3]int64{ // replies of nodes 0 and 1, by outcome; node 2: errors
			"lock":      {2, 1, 3},
			"unlock":    {1, 1, 2},
			"extend":    {1, 0, 1},
			"keepalive": {0, 1, 1},
		}[op]
		for node := 0; node < 2; node++ {
			if counts[0] > 0 {
				want[fmt.Sprintf("redsync.node.replies{redsync.node=%d,redsync.node.outcome=ok,redsync.op=%s}", node, op)] = counts[0]
			}
			if counts[1] > 0 {
				want[fmt.Sprintf("redsync.node.replies{redsync.node=%d,redsync.node.outcome=refused,redsync.op=%s}", node, op)] = counts[1]
			}
		}
		want[fmt.Sprintf("redsync.node.replies{redsync.node=2,redsync.node.outcome=error,redsync.op=%s}", op)] = counts[2]
	}
	assertEqualMaps(t, want, sums)

	histograms := histogramCounts(t, rm)
	for series, n := range map[string]uint64{
		"redsync.operation.duration{redsync.op=lock,redsync.outcome=ok}":    2,
		"redsync.operation.duration{redsync.op=lock,redsync.outcome=taken}": 1,
		"redsync.lock.held{}":                                    2,
		"redsync.lock.validity{redsync.op=lock}":                 2,
		"redsync.lock.validity{redsync.op=extend}":               1,
		"redsync.node.latency{redsync.node=0,redsync.op=lock}":   3,
		"redsync.node.latency{redsync.node=2,redsync.op=unlock}": 2,
	} {
		if histograms[series] != n {
			t.Errorf("%s has %d samples, want %d", series, histograms[series], n)
		}
	}
}

func TestNameAttributeIsOptIn(t *testing.T) {
	_, rm := observed(t, redsyncotel.WithNameAttribute())
	sums := counterValues(t, rm)
	for series, n := range map[string]int64{
		"redsync.lock.attempts{redsync.lock.name=orders,redsync.outcome=ok}":    1,
		"redsync.lock.attempts{redsync.lock.name=orders,redsync.outcome=taken}": 1,
		"redsync.lock.attempts{redsync.lock.name=reports,redsync.outcome=ok}":   1,
		"redsync.locks.lost{redsync.lock.name=reports}":                         1,
		// Server metrics are per server, never per name.
		"redsync.node.replies{redsync.node=2,redsync.node.outcome=error,redsync.op=lock}": 3,
	} {
		if sums[series] != n {
			t.Errorf("%s = %d, want %d", series, sums[series], n)
		}
	}
}

// series names a data point: the instrument and its attributes, sorted.
func series(name string, attrs attribute.Set) string {
	var parts []string
	for _, kv := range attrs.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func counterValues(t *testing.T, rm metricdata.ResourceMetrics) map[string]int64 {
	t.Helper()
	values := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != redsyncotel.ScopeName {
			t.Errorf("metrics of the scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					values[series(m.Name, dp.Attributes)] = dp.Value
				}
			}
		}
	}
	return values
}

func histogramCounts(t *testing.T, rm metricdata.ResourceMetrics) map[string]uint64 {
	t.Helper()
	counts := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range h.DataPoints {
					counts[series(m.Name, dp.Attributes)] = dp.Count
				}
			}
		}
	}
	return counts
}

func assertEqualMaps(t *testing.T, want, got map[string]int64) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if want[k] != got[k] {
			t.Errorf("%s = %d, want %d", k, got[k], want[k])
		}
	}
}

// An attempt that took a hand-over says so on its event.
func TestAHandedOverAttemptIsMarked(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	obs, err := redsyncotel.New(redsyncotel.WithTracerProvider(tp))
	must(t, err)
	ctx, span := tp.Tracer("test").Start(context.Background(), "lock")
	obs.Attempt(ctx, redsync.AttemptEvent{Name: "n", Attempt: 2, Try: 1, Agreed: 3, Quorum: 2, Acquired: true, HandedOver: true})
	obs.Attempt(ctx, redsync.AttemptEvent{Name: "n", Attempt: 1, Try: 1, Quorum: 2, Err: redsync.ErrFailed})
	span.End()
	events := exporter.GetSpans()[0].Events
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	handed, plain := attribute.NewSet(events[0].Attributes...), attribute.NewSet(events[1].Attributes...)
	if v, ok := handed.Value(redsyncotel.HandedOverKey); !ok || !v.AsBool() {
		t.Errorf("hand-over attempt: %v", events[0].Attributes)
	}
	if _, ok := plain.Value(redsyncotel.HandedOverKey); ok {
		t.Errorf("plain attempt marked as handed over: %v", events[1].Attributes)
	}
}

// A Semaphore's and a MultiMutex's operations have span names and op
// attributes of their own (acquire, release, multilock, multiunlock).
func TestSpansAndMetricsOfTheOtherPrimitives(t *testing.T) {
	spans, rm := observedRun(t, observertest.RunPrimitives)
	var got []string
	for _, s := range spans[:len(spans)-1] { // the script's own span last
		line := spanLine(s, redsyncotel.NameKey, redsyncotel.OpKey, redsyncotel.OutcomeKey)
		// At least the quorum's replies are on the span: a late one may
		// come after it ended.
		if countEvents(s, "redsync.node") < 2 {
			line += " (too few node events)"
		}
		got = append(got, line)
	}
	want := []string{
		"redsync.acquire workers acquire ok",
		"redsync.acquire workers acquire taken",
		"redsync.extend workers extend ok",
		"redsync.release workers release ok",
		"redsync.multilock a,b multilock ok",
		"redsync.multiunlock a,b multiunlock ok",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("spans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	sums := counterValues(t, rm)
	for _, series := range []string{
		"redsync.operations{redsync.op=acquire,redsync.outcome=ok}",
		"redsync.operations{redsync.op=acquire,redsync.outcome=taken}",
		"redsync.operations{redsync.op=release,redsync.outcome=ok}",
		"redsync.operations{redsync.op=multilock,redsync.outcome=ok}",
		"redsync.operations{redsync.op=multiunlock,redsync.outcome=ok}",
		"redsync.node.replies{redsync.node=0,redsync.node.outcome=refused,redsync.op=acquire}",
		"redsync.node.replies{redsync.node=2,redsync.node.outcome=error,redsync.op=multilock}",
	} {
		if sums[series] != 1 {
			t.Errorf("%s = %d, want 1", series, sums[series])
		}
	}
}

// countEvents is the number of s's events named name.
func countEvents(s tracetest.SpanStub, name string) int {
	n := 0
	for _, e := range s.Events {
		if e.Name == name {
			n++
		}
	}
	return n
}

// The operations of an RWMutex and an Election have spans of their own
// names; the locks that acquire in attempts carry their tries, and a read
// or write lock released tells how long it was held.
func TestTheOpsOfAnRWMutexAndAnElectionHaveTheirOwnSpans(t *testing.T) {
	ops := []redsync.Op{redsync.OpRLock, redsync.OpRUnlock, redsync.OpRExtend, redsync.OpRWLock,
		redsync.OpRWUnlock, redsync.OpRWExtend, redsync.OpCampaign, redsync.OpResign, redsync.OpProclaim}
	spans, rm := observing(t, func(_ trace.Tracer, obs redsync.Observer) {
		for _, op := range ops {
			ctx := obs.Start(context.Background(), redsync.StartEvent{Op: op, Name: "catalog", Tries: 3})
			obs.Done(ctx, redsync.DoneEvent{Op: op, Name: "catalog", Held: time.Second})
		}
	})
	if len(spans) != len(ops) {
		t.Fatalf("%d spans, want %d", len(spans), len(ops))
	}
	for i, op := range ops {
		if want := "redsync." + op.String(); spans[i].Name != want {
			t.Errorf("span %d: %q, want %q", i, spans[i].Name, want)
		}
		attrs := attribute.NewSet(spans[i].Attributes...)
		_, hasTries := attrs.Value(redsyncotel.TriesKey)
		if wantTries := op == redsync.OpRLock || op == redsync.OpRWLock || op == redsync.OpCampaign; hasTries != wantTries {
			t.Errorf("%s: tries attribute %v, want %v", op, hasTries, wantTries)
		}
	}
	if n := histogramCounts(t, rm)["redsync.lock.held{}"]; n != 2 {
		t.Errorf("held has %d samples, want 2 (RUnlock and the write lock's Unlock)", n)
	}
}
