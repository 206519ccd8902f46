package suite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	goredislib "github.com/redis/go-redis/v9"
)

// One test per line of docs/differences.md ("What differs from redsync v4
// on purpose"), in its order; each asserts what each library does.

// noCtx is a nil context, given where redsync takes it for
// context.Background().
var noCtx context.Context

// "A nil context is rejected with an *ArgumentError; redsync treats it as
// context.Background()."
func TestDifferenceNilContext(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name)
	if !quorumlock {
		if err := m.LockContext(noCtx); err != nil {
			t.Fatalf("LockContext(nil) = %v, want nil", err)
		}
		for _, op := range []struct {
			name string
			call func(context.Context) (bool, error)
		}{{"ExtendContext", m.ExtendContext}, {"ValidContext", m.ValidContext}, {"UnlockContext", m.UnlockContext}} {
			if ok, err := op.call(noCtx); !ok || err != nil {
				t.Errorf("%s(nil) = %v, %v; want true, nil", op.name, ok, err)
			}
		}
		return
	}
	for _, call := range []struct {
		name string
		call func(context.Context) error
	}{{"LockContext", m.LockContext}, {"TryLockContext", m.TryLockContext}} {
		if err := call.call(noCtx); !isArgumentError(err) {
			t.Errorf("%s(nil) = %v, want an *ArgumentError", call.name, err)
		}
	}
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	settle(f.rs)
	f.resetStats(t)
	for _, op := range []struct {
		name string
		call func(context.Context) (bool, error)
	}{{"ExtendContext", m.ExtendContext}, {"ValidContext", m.ValidContext}, {"UnlockContext", m.UnlockContext}} {
		if ok, err := op.call(noCtx); ok || !isArgumentError(err) {
			t.Errorf("%s(nil) = %v, %v; want false, an *ArgumentError", op.name, ok, err)
		}
	}
	if sent := f.commands(t); len(sent) != 0 {
		t.Errorf("the calls with a nil context sent %v", sent)
	}
	if ok, err := m.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
}

// badInput is one case of TestDifferenceBadInput: what the test does, and
// how redsync takes it.
type badInput struct {
	name string
	// op makes the Mutex over f's servers and runs its first operation.
	op func(t *testing.T, f *fleet, name string) error
	// redsync checks redsync's outcome: the operation's error, or what it
	// panicked with.
	redsync func(t *testing.T, f *fleet, name string, err error, panicked any)
}

// "Bad input is an error, not odd behaviour. No pools, a nil pool, an
// empty name or an out-of-range option (WithTries(0), a negative expiry, a
// nil delay function, ...) is reported by the Mutex's first operation as an
// *ArgumentError."
func TestDifferenceBadInput(t *testing.T) {
	wantFailed := func(t *testing.T, _ *fleet, _ string, err error, panicked any) {
		if panicked != nil || !errors.Is(err, redsync.ErrFailed) {
			t.Errorf("redsync: %v (panic %v), want ErrFailed", err, panicked)
		}
	}
	wantRedisErrors := func(t *testing.T, _ *fleet, _ string, err error, panicked any) {
		if panicked != nil || !reflect.DeepEqual(redisErrorNodes(err), []int{0, 1, 2}) {
			t.Errorf("redsync: %v (panic %v), want a *RedisError from every server", err, panicked)
		}
	}
	wantPanic := func(t *testing.T, _ *fleet, _ string, err error, panicked any) {
		if panicked == nil {
			t.Errorf("redsync: %v, want a panic", err)
		}
	}
	heldTryLock := func(opts ...redsync.Option) func(t *testing.T, f *fleet, name string) error {
		return func(t *testing.T, f *fleet, name string) error {
			f.set(t, name, "someone else", time.Minute, 0, 1, 2)
			return f.rs.NewMutex(name, append(opts, redsync.WithTries(2))...).Lock()
		}
	}
	tests := []badInput{
		{
			name: "NoPools",
			op: func(t *testing.T, f *fleet, name string) error {
				return redsync.New().NewMutex(name).TryLock()
			},
			redsync: wantFailed,
		},
		{
			name: "EmptyName",
			op: func(t *testing.T, f *fleet, name string) error {
				m := f.rs.NewMutex("")
				err := m.TryLock()
				if err == nil {
					t.Cleanup(func() { _, _ = m.Unlock() })
				}
				return err
			},
			redsync: func(t *testing.T, f *fleet, _ string, err error, panicked any) {
				if err != nil || panicked != nil {
					t.Errorf("redsync: %v (panic %v), want the lock of the key \"\"", err, panicked)
				}
			},
		},
		{
			name: "WithTries0",
			op: func(t *testing.T, f *fleet, name string) error {
				f.resetStats(t)
				return f.rs.NewMutex(name, redsync.WithTries(0)).Lock()
			},
			redsync: func(t *testing.T, f *fleet, name string, err error, panicked any) {
				wantFailed(t, f, name, err, panicked)
				if sent := f.commands(t); len(sent) != 0 {
					t.Errorf("redsync: Lock with WithTries(0) sent %v, want nothing", sent)
				}
			},
		},
		{
			name: "NegativeExpiry",
			op: func(t *testing.T, f *fleet, name string) error {
				return f.rs.NewMutex(name, redsync.WithExpiry(-time.Second)).TryLock()
			},
			redsync: wantRedisErrors, // the servers refuse SET ... PX -1000
		},
		{
			name:    "NilDelayFunc",
			op:      heldTryLock(redsync.WithRetryDelayFunc(nil)),
			redsync: wantPanic, // at the second try
		},
		{
			name: "NilGenValueFunc",
			op: func(t *testing.T, f *fleet, name string) error {
				return f.rs.NewMutex(name, redsync.WithGenValueFunc(nil)).TryLock()
			},
			redsync: wantPanic,
		},
		{
			name: "DriftFactorAboveOne",
			op: func(t *testing.T, f *fleet, name string) error {
				return f.rs.NewMutex(name, redsync.WithDriftFactor(1.5)).TryLock()
			},
			redsync: wantFailed, // every try leaves no validity
		},
		{
			name: "TimeoutFactorZero",
			op: func(t *testing.T, f *fleet, name string) error {
				return f.rs.NewMutex(name, redsync.WithTimeoutFactor(0)).TryLock()
			},
			redsync: wantRedisErrors, // every request's deadline is now
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, 3)
			name := uniqueName(t)
			var err error
			panicked := func() (p any) {
				defer func() { p = recover() }()
				err = tt.op(t, f, name)
				return nil
			}()
			settle(f.rs)
			if !quorumlock {
				tt.redsync(t, f, name, err, panicked)
				return
			}
			if panicked != nil || !isArgumentError(err) {
				t.Errorf("%v (panic %v), want an *ArgumentError", err, panicked)
			}
			if on := f.withKey(t, name); len(on) != 0 && tt.name != "NilDelayFunc" {
				t.Errorf("the refused operation set the key on %v", on)
			}
		})
	}
}

// envChild names the case a child process of TestDifferenceBadInputNilPool
// runs.
const envChild = "COMPAT_SUITE_CHILD"

// A nil pool cannot be shown in the test process: redsync dereferences it
// on a goroutine of its own, which ends the process. A child process runs
// it.
func TestDifferenceBadInputNilPool(t *testing.T) {
	if os.Getenv(envChild) == "nil-pool" {
		err := redsync.New(nil).NewMutex(uniqueName(t)).TryLock()
		fmt.Printf("argument error: %v: %v\n", isArgumentError(err), err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDifferenceBadInputNilPool$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"=nil-pool")
	out, err := cmd.CombinedOutput()
	if quorumlock {
		if err != nil || !strings.Contains(string(out), "argument error: true") {
			t.Errorf("a Mutex over a nil pool: %v\n%s\nwant an *ArgumentError", err, out)
		}
		return
	}
	if err == nil || !strings.Contains(string(out), "nil pointer dereference") {
		t.Errorf("redsync over a nil pool: %v\n%s\nwant the process to end on a nil pointer dereference", err, out)
	}
}

// "Unlock and Extend without a value (no Lock, no WithValue) return
// ErrNotHeld without contacting any server."
func TestDifferenceUnlockAndExtendWithoutAValue(t *testing.T) {
	for _, op := range []struct {
		name string
		call func(*redsync.Mutex) (bool, error)
		// redsync checks redsync's error.
		redsync func(err error) bool
	}{
		{"Unlock", (*redsync.Mutex).Unlock, func(err error) bool { return errors.Is(err, redsync.ErrLockAlreadyExpired) }},
		{"Extend", (*redsync.Mutex).Extend, func(err error) bool {
			nodes, ok := takenNodes(err)
			return ok && reflect.DeepEqual(nodes, []int{0, 1, 2})
		}},
	} {
		t.Run(op.name, func(t *testing.T) {
			f := newFleet(t, 3)
			m := f.rs.NewMutex(uniqueName(t))
			f.resetStats(t)
			ok, err := op.call(m)
			settle(f.rs)
			sent := f.commands(t)
			if ok {
				t.Fatalf("%s without a value = true", op.name)
			}
			if quorumlock {
				if !isNotHeld(err) || len(sent) != 0 {
					t.Errorf("%s = %v, sent %v; want ErrNotHeld, nothing sent", op.name, err, sent)
				}
				return
			}
			if !op.redsync(err) || len(sent) == 0 {
				t.Errorf("redsync: %s = %v, sent %v; want its script sent to every server", op.name, err, sent)
			}
		})
	}
}

// "A fresh value per try. Lock makes a new value for every try [...]
// WithGenValueFunc's function is called once per attempt."
func TestDifferenceFreshValuePerTry(t *testing.T) {
	f, pools := countingFleet(t, 3)
	name := uniqueName(t)
	f.set(t, name, "someone else", time.Minute, 0, 1, 2)
	var mu sync.Mutex
	made := 0
	gen := func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		made++
		return fmt.Sprintf("value-%d", made), nil
	}
	err := f.rs.NewMutex(name, redsync.WithTries(3), redsync.WithRetryDelay(5*time.Millisecond), redsync.WithGenValueFunc(gen)).Lock()
	if err == nil {
		t.Fatal("Lock of a held lock succeeded")
	}
	settle(f.rs)
	want := 1
	if quorumlock {
		want = 3
	}
	if made != want {
		t.Errorf("the value function was called %d times for 3 tries, want %d", made, want)
	}
	for i, p := range pools {
		if values := p.setNXValues(); len(values) != want {
			t.Errorf("server %d was asked to set %d different values (%v), want %d", i, len(values), values, want)
		}
	}
}

// "Per-server deadlines on every operation, Unlock, Extend and Valid
// included, whatever the client's own timeouts."
func TestDifferencePerServerDeadlines(t *testing.T) {
	for _, op := range []struct {
		name string
		call func(*redsync.Mutex) (bool, error)
	}{{"Unlock", (*redsync.Mutex).Unlock}, {"Extend", (*redsync.Mutex).Extend}, {"Valid", (*redsync.Mutex).Valid}} {
		t.Run(op.name, func(t *testing.T) {
			// The clients wait a second for a reply; the Mutex's
			// per-server deadline is 5% of its 2 s expiry: 100 ms.
			f := newFleet(t, 3, withClientOptions(func(o *goredislib.Options) { o.ReadTimeout = time.Second }))
			name := uniqueName(t)
			m := f.rs.NewMutex(name, redsync.WithExpiry(2*time.Second))
			if err := m.Lock(); err != nil {
				t.Fatal(err)
			}
			settle(f.rs)
			f.servers[1].Pause(t)
			f.servers[2].Pause(t)
			ok, err := op.call(m)
			if ok {
				t.Fatalf("%s with 2 of 3 servers paused = true", op.name)
			}
			errs := redisErrorsOf(err)
			if len(errs) != 2 {
				t.Fatalf("%s = %v, want a *RedisError for each paused server", op.name, err)
			}
			for _, e := range errs {
				var netErr net.Error
				isClientTimeout := errors.As(e.Err, &netErr) && netErr.Timeout()
				switch {
				case quorumlock && !errors.Is(e, context.DeadlineExceeded):
					t.Errorf("node %d: %v, want the per-server deadline (context.DeadlineExceeded)", e.Node, e.Err)
				case !quorumlock && (errors.Is(e, context.DeadlineExceeded) || !isClientTimeout):
					t.Errorf("redsync: node %d: %v, want the client's read timeout", e.Node, e.Err)
				}
			}
			f.servers[1].Resume(t)
			f.servers[2].Resume(t)
		})
	}
}

// "Success does not wait long for a stalled server. redsync's Lock waits
// for every server [...] Without WithFailFast a failure still waits for
// every server (up to the per-server deadline) so that its error names each
// of them, as in redsync."
func TestDifferenceSuccessDoesNotWaitForAStalledServer(t *testing.T) {
	t.Run("Success", func(t *testing.T) {
		// The clients never time out a read: a library that waits for
		// server 2 waits until it is resumed.
		f := newFleet(t, 3, withClientOptions(func(o *goredislib.Options) { o.ReadTimeout = -1 }))
		name := uniqueName(t)
		m := f.rs.NewMutex(name)
		f.servers[2].Pause(t)
		locked := make(chan error, 1)
		go func() { locked <- m.Lock() }()
		if !quorumlock {
			pause(300)
			select {
			case err := <-locked:
				t.Fatalf("redsync: Lock returned (%v) while a server was paused", err)
			default:
			}
			f.servers[2].Resume(t)
		}
		if err := within(t, "Lock", func() error { return <-locked }); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		f.servers[2].Resume(t)
		if ok, err := m.Unlock(); !ok || err != nil {
			t.Fatalf("Unlock = %v, %v", ok, err)
		}
	})
	t.Run("FailureNamesEveryServer", func(t *testing.T) {
		f := newFleet(t, 3, withClientOptions(func(o *goredislib.Options) { o.ReadTimeout = time.Second }))
		name := uniqueName(t)
		f.set(t, name, "someone else", time.Minute, 0)
		f.servers[2].Pause(t)
		err := f.rs.NewMutex(name, redsync.WithExpiry(2*time.Second)).TryLock()
		if nodes := nodeTakenNodes(err); !reflect.DeepEqual(nodes, []int{0}) {
			t.Errorf("ErrNodeTaken nodes = %v, want [0] (%v)", nodes, err)
		}
		if nodes := redisErrorNodes(err); !reflect.DeepEqual(nodes, []int{2}) {
			t.Errorf("RedisError nodes = %v, want [2] (%v)", nodes, err)
		}
		f.servers[2].Resume(t)
	})
}

// "A stalled server under load does not pile up goroutines. [...] Once at
// least 64 requests wait for a server that answered none of them within
// the per-server deadline, operations stop sending it the requests it
// cannot need [...] it counts as failed with ErrBacklogged."
func TestDifferenceBackloggedServer(t *testing.T) {
	const waiting = 80
	f := newFleet(t, 3, withClientOptions(func(o *goredislib.Options) {
		o.ReadTimeout = 1500 * time.Millisecond
		o.PoolSize = 2 * waiting
	}))
	opts := []redsync.Option{redsync.WithExpiry(2 * time.Second)} // per-server deadline 100 ms
	f.servers[2].Pause(t)
	var wg sync.WaitGroup
	for i := 0; i < waiting; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = f.rs.NewMutex(uniqueName(t, i), opts...).TryLock()
		}()
	}
	wg.Wait()
	pause(200) // past the per-server deadline of the requests to server 2
	name := uniqueName(t, "held")
	f.set(t, name, "someone else", time.Minute, 0)
	err := f.rs.NewMutex(name, opts...).TryLock()
	errs := redisErrorsOf(err)
	if len(errs) != 1 || errs[0].Node != 2 {
		t.Fatalf("TryLock = %v, want a *RedisError for server 2", err)
	}
	if quorumlock != isBacklogged(errs[0]) {
		t.Errorf("%s: server 2's error is %v; backlogged: %v, want %v", side, errs[0].Err, isBacklogged(errs[0]), quorumlock)
	}
	f.servers[2].Resume(t)
}

// "A released key may be kept for a waiter for up to 50 ms. When a release
// reaches a waiter of this library in another process [...] a redsync
// SET NX, or a TryLock here, is refused meanwhile."
func TestDifferenceReleasedKeyKeptForAWaiter(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	a := holdLock(t, f.rs, name)
	rsB, _, _ := f.process(t)
	// B polls once a second with redsync, so that C's try below comes
	// first; with this library B learns of the release at once.
	b := rsB.NewMutex(name, redsync.WithRetryDelay(time.Second))
	bLocked := make(chan error, 1)
	go func() { bLocked <- b.Lock() }()
	awaitWaiter(t, f, name, false)
	if ok, err := a.Unlock(); !ok || err != nil {
		t.Fatalf("A's Unlock = %v, %v", ok, err)
	}
	rsC, _, _ := f.process(t)
	c := rsC.NewMutex(name)
	err := c.TryLock()
	if quorumlock {
		if _, taken := takenNodes(err); !taken {
			t.Errorf("C's TryLock right after a release that a waiter heard = %v, want an *ErrTaken", err)
		}
	} else {
		if err != nil {
			t.Fatalf("redsync: C's TryLock right after the release = %v, want nil", err)
		}
		if ok, err := c.Unlock(); !ok || err != nil {
			t.Fatalf("C's Unlock = %v, %v", ok, err)
		}
	}
	if err := within(t, "B's Lock", func() error { return <-bLocked }); err != nil {
		t.Fatalf("B's Lock: %v", err)
	}
	if ok, err := b.Unlock(); !ok || err != nil {
		t.Fatalf("B's Unlock = %v, %v", ok, err)
	}
}

// "Extend never brings back a lock its Mutex unlocked. After Unlock,
// redsync's Extend with WithSetNXOnExtend sets the key again on every
// server and returns true; here [...] it returns false with the *ErrTaken
// of redsync's plain Extend, and the name stays free."
func TestDifferenceExtendAfterUnlock(t *testing.T) {
	for _, setNX := range []bool{false, true} {
		t.Run(fmt.Sprintf("SetNXOnExtend=%v", setNX), func(t *testing.T) {
			f := newFleet(t, 3)
			name := uniqueName(t)
			var opts []redsync.Option
			if setNX {
				opts = append(opts, redsync.WithSetNXOnExtend())
			}
			m := f.rs.NewMutex(name, opts...)
			if err := m.Lock(); err != nil {
				t.Fatal(err)
			}
			if ok, err := m.Unlock(); !ok || err != nil {
				t.Fatalf("Unlock = %v, %v", ok, err)
			}
			settle(f.rs) // here Unlock returns at quorum: the last release may still be on its way
			ok, err := m.Extend()
			settle(f.rs)
			keys := f.withKey(t, name)
			if setNX && !quorumlock {
				if !ok || err != nil || len(keys) != 3 {
					t.Errorf("redsync: Extend after Unlock = %v, %v, keys %v; want true, the key back on every server", ok, err, keys)
				}
				return
			}
			nodes, taken := takenNodes(err)
			if ok || !taken || !reflect.DeepEqual(nodes, []int{0, 1, 2}) || len(keys) != 0 {
				t.Errorf("Extend after Unlock = %v, %v, keys %v; want false, an *ErrTaken of [0 1 2], no key", ok, err, keys)
			}
		})
	}
}

// "A cancelled LockContext returns an error that matches both ErrFailed
// and ctx.Err()."
func TestDifferenceCancelledLockContext(t *testing.T) {
	for _, cc := range []struct {
		name string
		make func() (context.Context, context.CancelFunc)
	}{
		{"Cancelled", func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return c, cancel
		}},
		{"DeadlineExceeded", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
		{"DoneBeforeTheCall", func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(context.Background())
			cancel()
			return c, cancel
		}},
	} {
		t.Run(cc.name, func(t *testing.T) {
			f := newFleet(t, 3)
			name := uniqueName(t)
			f.set(t, name, "someone else", time.Minute, 0, 1, 2)
			c, cancel := cc.make()
			defer cancel()
			err := f.rs.NewMutex(name).LockContext(c)
			if !errors.Is(err, redsync.ErrFailed) {
				t.Fatalf("LockContext = %v, want ErrFailed", err)
			}
			if matches := errors.Is(err, c.Err()); matches != quorumlock {
				t.Errorf("%s: LockContext = %v; matches ctx.Err() (%v): %v, want %v", side, err, c.Err(), matches, quorumlock)
			}
		})
	}
}

// "The go-redis v9 pool batches concurrent commands into pipelines [...]
// goredis.WithBatching(false) turns it off."
func TestDifferenceGoRedisBatches(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pool    func(goredislib.UniversalClient) redis.Pool
		batches bool
	}{
		{"NewPool", goredisNewPool, quorumlock},
		{"Unbatched", unbatchedPool, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := &pipelineCounter{}
			f := newFleet(t, 3, withPool(func(c goredislib.UniversalClient) redis.Pool {
				c.AddHook(hook)
				return tt.pool(c)
			}))
			var wg sync.WaitGroup
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 30; i++ {
						m := f.rs.NewMutex(uniqueName(t, g, "-", i))
						if err := m.Lock(); err != nil {
							t.Errorf("Lock: %v", err)
							return
						}
						if ok, err := m.Unlock(); !ok || err != nil {
							t.Errorf("Unlock = %v, %v", ok, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			settle(f.rs)
			pipelines, commands := hook.counts()
			if got := pipelines > 0; got != tt.batches {
				t.Errorf("%s: %d pipelines and %d commands alone through the hooks; batches: %v, want %v",
					side, pipelines, commands, got, tt.batches)
			}
		})
	}
}

// pipelineCounter is a go-redis hook that counts the pipelines of lock
// commands and the commands sent alone.
type pipelineCounter struct {
	mu        sync.Mutex // guards the counts
	pipelines int
	commands  int
}

func (h *pipelineCounter) counts() (pipelines, commands int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pipelines, h.commands
}

func (h *pipelineCounter) DialHook(next goredislib.DialHook) goredislib.DialHook { return next }

func (h *pipelineCounter) ProcessHook(next goredislib.ProcessHook) goredislib.ProcessHook {
	return func(ctx context.Context, cmd goredislib.Cmder) error {
		h.mu.Lock()
		h.commands++
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *pipelineCounter) ProcessPipelineHook(next goredislib.ProcessPipelineHook) goredislib.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredislib.Cmder) error {
		// go-redis itself sends HELLO and CLIENT SETINFO on a new
		// connection as a pipeline.
		if len(cmds) > 0 && cmds[0].Name() != "hello" && cmds[0].Name() != "client" {
			h.mu.Lock()
			h.pipelines++
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}
