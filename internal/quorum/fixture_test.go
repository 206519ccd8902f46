package quorum

import (
	"context"
	"testing"
	"time"

	"github.com/quorumlock/redsync/internal/clock"
	"github.com/quorumlock/redsync/redis"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// timeout is the per-server deadline of the test rounds.
const timeout = 80 * time.Millisecond

// fixture runs rounds of gated ops on an Engine with a fake clock.
type fixture struct {
	t        *testing.T
	clk      *clock.Fake
	eng      *Engine
	inflight Inflight
	states   []*NodeState
	gates    []chan answer // per node: the op's answer, when it may return
	seen     chan opSeen   // what each op saw once it returned
}

// answer is what an op returns.
type answer struct {
	ok  bool
	err error
}

// opSeen is what an op saw: its node, and its context's error on return.
type opSeen struct {
	node   int
	ctxErr error
}

// newFixture returns a fixture for n servers; it waits for every op to
// return at the end of the test (a test must answer every gate).
func newFixture(t *testing.T, n int) *fixture {
	f := &fixture{t: t, clk: clock.NewFake(t0), states: make([]*NodeState, n), gates: make([]chan answer, n), seen: make(chan opSeen, 4*n)}
	f.eng = NewEngine(Config{Clock: f.clk, PanicError: func(v any, _ []byte) error { return panicked{v} }})
	for i := range f.states {
		f.states[i] = &NodeState{}
		f.gates[i] = make(chan answer, 1)
	}
	t.Cleanup(func() {
		f.inflight.Wait()
		f.eng.StopIdle()
	})
	return f
}

// panicked is the error of a recovered panic in the tests.
type panicked struct{ v any }

func (p panicked) Error() string { return "panicked" }

// op waits for its node's gate and returns its answer.
func (f *fixture) op(ctx context.Context, node int, _ redis.Pool) (bool, error) {
	a := <-f.gates[node]
	f.seen <- opSeen{node: node, ctxErr: ctx.Err()}
	return a.ok, a.err
}

// answer lets node's op return a.
func (f *fixture) answer(node int, a answer) { f.gates[node] <- a }

// round returns the Round of f's op with quorum q.
func (f *fixture) round(q int) Round {
	return Round{
		Op: f.op, Pools: make([]redis.Pool, len(f.states)), States: f.states, Inflight: &f.inflight,
		Quorum: q, Timeout: timeout, Expiry: time.Minute,
	}
}

// outcome is what a round run in the background returned, copied before
// its Release.
type outcome struct {
	n      int
	ctxErr error
	failed []Reply
}

// start runs rd in the background; the outcome arrives on the channel.
func (f *fixture) start(ctx context.Context, rd Round, skip func(int) bool) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		res := f.eng.Run(ctx, rd, skip)
		done <- outcome{n: res.N, ctxErr: res.CtxErr, failed: append([]Reply(nil), res.Failed()...)}
		res.Release()
	}()
	return done
}

// awaitArmed waits until the round's timer is armed to fire d after t0.
func (f *fixture) awaitArmed(d time.Duration) {
	f.t.Helper()
	stop := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() { close(stop) })
	defer timer.Stop()
	if !f.clk.WaitArmed(t0.Add(d), stop) {
		f.t.Fatalf("no timer armed for %v", d)
	}
}

// recorder is a Watcher that sends what it sees on events.
type recorder struct {
	events chan event
}

// event is one call of a recorder.
type event struct {
	kind    string // "reply", "notSent", "noReply", "late"
	reply   Reply
	latency time.Duration
}

func newRecorder() *recorder { return &recorder{events: make(chan event, 256)} }

func (w *recorder) Reply(r Reply, latency time.Duration) {
	w.events <- event{kind: "reply", reply: r, latency: latency}
}

func (w *recorder) NotSent(node int) {
	w.events <- event{kind: "notSent", reply: Reply{Node: node, Outcome: NotSent}}
}

func (w *recorder) NoReply(node int, err error, timeout time.Duration) {
	w.events <- event{kind: "noReply", reply: Reply{Node: node, Outcome: NoReply, Err: err}, latency: timeout}
}

func (w *recorder) Late(r Reply, latency time.Duration) {
	w.events <- event{kind: "late", reply: r, latency: latency}
}

// next returns the recorder's next event.
func (w *recorder) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-w.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return event{}
	}
}

// receive returns the outcome of a round started with start.
func receive(t *testing.T, done <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the round did not return")
		return outcome{}
	}
}

// notYet fails t when the round returned already.
func notYet(t *testing.T, done <-chan outcome) {
	t.Helper()
	select {
	case o := <-done:
		t.Fatalf("the round returned early: %+v", o)
	default:
	}
}
