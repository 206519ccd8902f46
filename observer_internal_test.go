package redsync

import (
	"context"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/redsync/internal/eventlog"
	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// memServer is an in-memory server for counting this package's own
// allocations: unlike a network client, its connection allocates nothing.
// It understands the commands an uncontended Lock and Unlock send.
type memServer struct {
	mu   sync.Mutex // guards keys
	keys map[string]string
	conn memConn
}

func newMemServer() *memServer {
	s := &memServer{keys: make(map[string]string)}
	s.conn.s = s
	return s
}

func (s *memServer) Get(context.Context) (redis.Conn, error) { return &s.conn, nil }

type memConn struct{ s *memServer }

func (c *memConn) Get(name string) (string, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.keys[name], nil
}

func (c *memConn) Set(name, value string) (bool, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.keys[name] = value
	return true, nil
}

func (c *memConn) SetNX(name, value string, _ time.Duration) (bool, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if _, ok := c.s.keys[name]; ok {
		return false, nil
	}
	c.s.keys[name] = value
	return true, nil
}

func (c *memConn) Eval(script *redis.Script, keysAndArgs ...any) (any, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	name, value := keysAndArgs[0].(string), keysAndArgs[script.KeyCount].(string)
	current, ok := c.s.keys[name]
	switch {
	case script != scripts.Release:
		panic("memServer runs the release script only")
	case !ok:
		return int64(-1), nil
	case current != value:
		return int64(0), nil
	}
	delete(c.s.keys, name)
	return int64(1), nil
}

func (c *memConn) ScriptLoad(*redis.Script) error     { return nil }
func (c *memConn) PTTL(string) (time.Duration, error) { return -2, nil }
func (c *memConn) Close() error                       { return nil }

// unobservedLockUnlockAllocs is what an uncontended Lock and Unlock with a
// cancellable context allocate on one server without an observer (the
// value, its hold, the two operations' closures, script arguments and
// detached contexts; rounds, their deadlines and timers are recycled or
// shared). Observers must not add to it: an unobserved Mutex pays a nil
// check per event, nothing more. If this test fails after another change,
// look at the hot path with go build -gcflags=-m.
const unobservedLockUnlockAllocs = 8

func TestUnobservedLockAndUnlockAllocateNothingForObservers(t *testing.T) {
	rs := New(newMemServer())
	defer rs.Wait()
	ctx, cancel := context.WithCancel(context.Background()) // as a request's
	defer cancel()
	lockUnlock := func(m *Mutex) func() {
		return func() {
			if err := m.LockContext(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := m.UnlockContext(ctx); !ok {
				t.Fatal(err)
			}
		}
	}
	unobserved := rs.NewMutex("allocs")
	lockUnlock(unobserved)() // warm up the workers and the timer pool
	allocs := testing.AllocsPerRun(500, lockUnlock(unobserved))
	t.Logf("unobserved Lock+Unlock: %v allocations", allocs)
	budget := float64(unobservedLockUnlockAllocs)
	if raceEnabled {
		// The race detector makes sync.Pool drop what it is given at
		// random, so recycled timers and rounds are sometimes made anew.
		budget += 6
	}
	if allocs > budget {
		t.Errorf("an unobserved Lock+Unlock allocates %v times, more than its budget of %v", allocs, budget)
	}

	observed := rs.NewMutex("allocs", WithObserver(BaseObserver{}))
	lockUnlock(observed)()
	t.Logf("observed (BaseObserver) Lock+Unlock: %v allocations", testing.AllocsPerRun(500, lockUnlock(observed)))
}

// recorder records every event with the operation it belongs to (see
// internal/eventlog): the one recording Observer of this package's tests.
type recorder = eventlog.Recorder[StartEvent, AttemptEvent, NodeEvent, DoneEvent, LostEvent]

// event is one event a recorder recorded.
type event = eventlog.Event[StartEvent, AttemptEvent, NodeEvent, DoneEvent, LostEvent]

// isNode selects NodeEvents (for a recorder's Keep, say).
func isNode(e event) bool { return e.Node != nil }

// isAttempt selects AttemptEvents (for a recorder's Keep).
func isAttempt(e event) bool { return e.Attempt != nil }

func TestEveryReplyIsReportedOnceInTimeOrLate(t *testing.T) {
	const nodes = 5
	pools := make([]redis.Pool, nodes)
	for i := range pools {
		// A memServer that answers after a random delay.
		pools[i] = fakepool.New(newMemServer()).On(fakepool.PoolGet, fakepool.Before(func(*fakepool.Call) error {
			time.Sleep(time.Duration(rand.Int63n(int64(1500 * time.Microsecond))))
			return nil
		}))
	}
	rs := New(pools...)
	rec := &recorder{Keep: isNode}
	rs.SetObserver(rec)
	// A 1 ms per-server deadline: some replies come in time, some after
	// their round was decided, some after the deadline.
	for i := 0; i < 200; i++ {
		m := rs.NewMutex("stress", WithExpiry(100*time.Millisecond), WithTimeoutFactor(0.01),
			WithHandoff(false), WithTries(2), WithRetryDelay(0), WithFailFast(i%2 == 0))
		if m.Lock() == nil {
			_, _ = m.Unlock()
		}
	}
	rs.Wait()

	// The node events of each round, by operation and attempt.
	rounds := map[[2]int][]NodeEvent{}
	for _, e := range rec.Events() {
		if e.Op == 0 {
			t.Fatalf("a node event without the context Start returned: %+v", *e.Node)
		}
		k := [2]int{e.Op, e.Node.Attempt}
		rounds[k] = append(rounds[k], *e.Node)
	}
	var inTime, late, timeouts int
	for round, events := range rounds {
		replies := map[int]int{}
		timedOut := map[int]bool{}
		for _, e := range events {
			if e.Outcome == NodeTimeout {
				if timedOut[e.Node] || replies[e.Node] > 0 {
					t.Errorf("round %v: a timeout of node %d after its reply or another timeout", round, e.Node)
				}
				timedOut[e.Node] = true
				timeouts++
				continue
			}
			replies[e.Node]++
			if e.Late {
				late++
			} else if inTime++; timedOut[e.Node] {
				t.Errorf("round %v: node %d replied in time after its timeout", round, e.Node)
			}
		}
		for node := 0; node < nodes; node++ {
			if replies[node] != 1 {
				t.Errorf("round %v: node %d reported %d times, want once: %+v", round, node, replies[node], events)
			}
		}
	}
	t.Logf("%d rounds: %d replies in time, %d late, %d timeouts", len(rounds), inTime, late, timeouts)
	if inTime == 0 || late == 0 || timeouts == 0 {
		t.Error("the delays do not give replies of every kind: the test exercises too little")
	}
}
