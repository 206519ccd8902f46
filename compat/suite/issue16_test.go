package suite

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
)

// The scenarios of issue 16, items 2 to 7 (item 1 is api_test.go and
// compat/apidiff.sh, item 6 TestNewScriptKeepsItsFieldsAsGiven).

// Item 2: a Lock that fails leaves nothing on any server.
func TestFailedLockLeavesNoKey(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fleet, name string)
		// live are the servers still running; foreign those holding
		// another process's value.
		live, foreign []int
		ctx           func() (context.Context, context.CancelFunc)
	}{
		{
			name:    "ThreeOfFiveServersDown",
			prepare: func(t *testing.T, f *fleet, name string) { killAll(t, f, 2, 3, 4) },
			live:    []int{0, 1},
		},
		{
			name: "ForeignValueOnThreeOfFive",
			prepare: func(t *testing.T, f *fleet, name string) {
				f.set(t, name, "someone else", time.Minute, 0, 1, 2)
			},
			live:    []int{0, 1, 2, 3, 4},
			foreign: []int{0, 1, 2},
		},
		{
			name:    "CancelledWithThreeOfFiveServersDown",
			prepare: func(t *testing.T, f *fleet, name string) { killAll(t, f, 2, 3, 4) },
			live:    []int{0, 1},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 150*time.Millisecond)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, 5)
			name := uniqueName(t)
			tt.prepare(t, f, name)
			m := f.rs.NewMutex(name, redsync.WithTries(3), redsync.WithRetryDelay(20*time.Millisecond))
			var err error
			if tt.ctx != nil {
				c, cancel := tt.ctx()
				defer cancel()
				m = f.rs.NewMutex(name, redsync.WithRetryDelay(20*time.Millisecond))
				err = m.LockContext(c)
			} else {
				err = m.Lock()
			}
			if err == nil {
				t.Fatal("Lock succeeded")
			}
			settle(f.rs)
			want := map[int]string{}
			for _, i := range tt.foreign {
				want[i] = "someone else"
			}
			got := f.withKey(t, name)
			if tt.ctx != nil && !quorumlock {
				// redsync releases on the caller's context: a Lock
				// cancelled during a try leaves that try's value where it
				// was granted, until it expires (docs/differences.md: a difference on
				// purpose).
				leftOnlyItsOwnTry(t, f, name, got)
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after the failed Lock (%v) the key is %v, want %v (nothing but the other holder's)", err, got, want)
			}
		})
	}
}

// leftOnlyItsOwnTry checks that the keys a cancelled redsync Lock left
// hold one value, with the Mutex's expiry (8 s) at most.
func leftOnlyItsOwnTry(t *testing.T, f *fleet, name string, keys map[int]string) {
	t.Helper()
	values := map[string]bool{}
	for i, v := range keys {
		values[v] = true
		if d := f.pttl(t, i, name); d <= 0 || d > 8*time.Second {
			t.Errorf("server %d: the key left has PTTL %v, want the try's expiry", i, d)
		}
	}
	if len(values) > 1 {
		t.Errorf("the cancelled Lock left several values: %v", keys)
	}
}

// killAll kills the given servers of f.
func killAll(t *testing.T, f *fleet, servers ...int) {
	t.Helper()
	for _, i := range servers {
		f.servers[i].Kill(t)
	}
}

// Item 2: a waiter that got the lock and released it leaves nothing that
// refuses the next TryLock (gitea's modules/globallock try_lock).
func TestTryLockRightAfterAWaiterGotAndReleasedTheLockSucceeds(t *testing.T) {
	const rounds = 200
	tests := []struct {
		name      string
		processes int // 1: A, B and C share a Redsync; 3: one each
		polling   bool
	}{
		{"OneProcess", 1, false},
		{"ThreeProcesses", 3, false},
		{"OneProcessPolling", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, 3)
			rsA, rsB, rsC := f.rs, f.rs, f.rs
			if tt.processes == 3 {
				rsB, _, _ = f.process(t)
				rsC, _, _ = f.process(t)
			}
			var waiterOpts []redsync.Option
			if tt.polling {
				waiterOpts = pollingOptions()
			}
			waiterOpts = append(waiterOpts, redsync.WithRetryDelay(5*time.Millisecond))
			refused := 0
			var firstRefusal error
			for round := 0; round < rounds; round++ {
				name := uniqueName(t, round)
				a := rsA.NewMutex(name)
				if err := a.Lock(); err != nil {
					t.Fatalf("round %d: A's Lock: %v", round, err)
				}
				b := rsB.NewMutex(name, waiterOpts...)
				bLocked := make(chan error, 1)
				go func() { bLocked <- b.Lock() }()
				awaitWaiter(t, f, name, tt.polling)
				if ok, err := a.Unlock(); !ok || err != nil {
					t.Fatalf("round %d: A's Unlock = %v, %v", round, ok, err)
				}
				if err := within(t, "B's Lock", func() error { return <-bLocked }); err != nil {
					t.Fatalf("round %d: B's Lock: %v", round, err)
				}
				if ok, err := b.Unlock(); !ok || err != nil {
					t.Fatalf("round %d: B's Unlock = %v, %v", round, ok, err)
				}
				c := rsC.NewMutex(name)
				if err := c.TryLock(); err != nil {
					refused++
					if firstRefusal == nil {
						firstRefusal = fmt.Errorf("round %d: %w (keys %v)", round, err, f.withKey(t, name))
					}
					continue
				}
				if ok, err := c.Unlock(); !ok || err != nil {
					t.Fatalf("round %d: C's Unlock = %v, %v", round, ok, err)
				}
			}
			if refused != 0 {
				t.Errorf("%d of %d TryLocks right after the waiter's Unlock were refused; first: %v", refused, rounds, firstRefusal)
			}
		})
	}
}

// Item 3: without WithFailFast a failure waits for every server, so that
// its error names each of them.
func TestFailedTryNamesEveryServerHoldingTheLock(t *testing.T) {
	holders := []struct {
		name string
		hold func(t *testing.T, f *fleet, name string)
	}{
		{"ForeignValue", func(t *testing.T, f *fleet, name string) {
			f.set(t, name, "someone else", time.Minute, 0, 1, 2)
		}},
		// The try comes right after the holder's Lock returned, which
		// redsync's does once every server answered.
		{"HolderInTheSameProcess", func(t *testing.T, f *fleet, name string) {
			holdLock(t, f.rs, name)
		}},
		{"HolderInAnotherProcess", func(t *testing.T, f *fleet, name string) {
			rs, _, _ := f.process(t)
			holdLock(t, rs, name)
		}},
	}
	calls := []struct {
		name string
		call func(rs *redsync.Redsync, name string) error
	}{
		{"TryLock", func(rs *redsync.Redsync, name string) error { return rs.NewMutex(name).TryLock() }},
		{"LockWithTries1", func(rs *redsync.Redsync, name string) error {
			return rs.NewMutex(name, redsync.WithTries(1)).Lock()
		}},
		{"LockWithTries3", func(rs *redsync.Redsync, name string) error {
			return rs.NewMutex(name, redsync.WithTries(3), redsync.WithRetryDelay(20*time.Millisecond)).Lock()
		}},
	}
	for _, h := range holders {
		for _, c := range calls {
			t.Run(h.name+"/"+c.name, func(t *testing.T) {
				f := newFleet(t, 3)
				name := uniqueName(t)
				h.hold(t, f, name)
				err := c.call(f.rs, name)
				nodes, ok := takenNodes(err)
				if !ok || !reflect.DeepEqual(nodes, []int{0, 1, 2}) {
					t.Errorf("%s = %v, want an *ErrTaken of nodes [0 1 2]", c.name, err)
				}
			})
		}
	}
}

// holdLock locks name through rs and unlocks it when the test ends.
func holdLock(t *testing.T, rs *redsync.Redsync, name string) *redsync.Mutex {
	t.Helper()
	m := rs.NewMutex(name)
	if err := m.Lock(); err != nil {
		t.Fatalf("Lock of %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = m.Unlock() })
	return m
}

// Item 4: UnlockContext, ExtendContext and ValidContext with a context
// already done send nothing, return false and an error matching ctx.Err(),
// and leave the Mutex as it was.
func TestOperationsWithAContextAlreadyDoneSendNothing(t *testing.T) {
	contexts := []struct {
		name string
		make func() (context.Context, context.CancelFunc)
	}{
		{"Cancelled", func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(context.Background())
			cancel()
			return c, cancel
		}},
		{"PastDeadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}},
	}
	ops := []struct {
		name string
		call func(m *redsync.Mutex, c context.Context) (bool, error)
	}{
		{"UnlockContext", (*redsync.Mutex).UnlockContext},
		{"ExtendContext", (*redsync.Mutex).ExtendContext},
		{"ValidContext", (*redsync.Mutex).ValidContext},
	}
	for _, cc := range contexts {
		for _, op := range ops {
			t.Run(cc.name+"/"+op.name, func(t *testing.T) {
				f := newFleet(t, 3)
				name := uniqueName(t)
				m := f.rs.NewMutex(name)
				if err := m.Lock(); err != nil {
					t.Fatal(err)
				}
				settle(f.rs)
				value, until := m.Value(), m.Until()
				f.resetStats(t)
				c, cancel := cc.make()
				defer cancel()
				ok, err := op.call(m, c)
				settle(f.rs)
				if ok {
					t.Errorf("%s = true", op.name)
				}
				if err == nil || !errors.Is(err, c.Err()) {
					t.Errorf("%s's error = %v, want one matching %v", op.name, err, c.Err())
				}
				if sent := f.commands(t); len(sent) != 0 {
					t.Errorf("%s sent %v", op.name, sent)
				}
				if m.Value() != value || !m.Until().Equal(until) {
					t.Errorf("%s changed the Mutex: Value %q -> %q, Until %v -> %v", op.name, value, m.Value(), until, m.Until())
				}
				if on := f.holding(t, name, value); !reflect.DeepEqual(on, []int{0, 1, 2}) {
					t.Errorf("the lock's value is on %v after %s, want [0 1 2]", on, op.name)
				}
				if ok, err := m.Unlock(); !ok || err != nil {
					t.Errorf("Unlock after %s = %v, %v; want true, nil", op.name, ok, err)
				}
			})
		}
	}
}

// Item 5: through a Pool of the user's own, the library makes the calls
// redsync makes: SetNX once per try, the scripts through Eval, no PTTL.
func TestAUsersOwnPoolSeesTheCallsRedsyncMakes(t *testing.T) {
	t.Run("LockAgainstAHeldKeyWithTries4", func(t *testing.T) {
		f, pools := countingFleet(t, 3)
		name := uniqueName(t)
		f.set(t, name, "someone else", time.Minute, 0, 1, 2)
		err := f.rs.NewMutex(name, redsync.WithTries(4), redsync.WithRetryDelay(5*time.Millisecond)).Lock()
		if _, ok := takenNodes(err); !ok {
			t.Fatalf("Lock = %v, want an *ErrTaken", err)
		}
		settle(f.rs)
		wantCalls(t, pools, map[string][]int{"SetNX": {4, 4, 4}, "PTTL": {0, 0, 0}, "Get": {0, 0, 0}, "Set": {0, 0, 0}, "ScriptLoad": {0, 0, 0}})
		// redsync releases after every failed try, through the release
		// script; fewer releases are fine where nothing was set.
		if _, per := callsOf(pools, "Eval"); !quorumlock && !reflect.DeepEqual(per, []int{4, 4, 4}) {
			t.Errorf("Eval per pool = %v, want [4 4 4]", per)
		} else if per[0] > 4 || per[1] > 4 || per[2] > 4 {
			t.Errorf("Eval per pool = %v, want at most one release per try", per)
		}
		wantScriptsWithTheirHash(t, pools, 1)
	})
	t.Run("LockExtendValidUnlock", func(t *testing.T) {
		f, pools := countingFleet(t, 3)
		name := uniqueName(t)
		m := f.rs.NewMutex(name)
		if err := m.Lock(); err != nil {
			t.Fatal(err)
		}
		settle(f.rs)
		wantCalls(t, pools, map[string][]int{"SetNX": {1, 1, 1}, "Eval": {0, 0, 0}, "PTTL": {0, 0, 0}, "Get": {0, 0, 0}})
		if ok, err := m.Extend(); !ok || err != nil {
			t.Fatalf("Extend = %v, %v", ok, err)
		}
		if ok, err := m.Valid(); !ok || err != nil {
			t.Fatalf("Valid = %v, %v", ok, err)
		}
		if ok, err := m.Unlock(); !ok || err != nil {
			t.Fatalf("Unlock = %v, %v", ok, err)
		}
		settle(f.rs)
		wantCalls(t, pools, map[string][]int{"SetNX": {1, 1, 1}, "Eval": {2, 2, 2}, "Get": {1, 1, 1}, "PTTL": {0, 0, 0}, "Set": {0, 0, 0}, "ScriptLoad": {0, 0, 0}})
		wantScriptsWithTheirHash(t, pools, 2)
	})
	t.Run("ExtendWithSetNXOnExtend", func(t *testing.T) {
		f, pools := countingFleet(t, 3)
		name := uniqueName(t)
		m := f.rs.NewMutex(name, redsync.WithSetNXOnExtend())
		if err := m.Lock(); err != nil {
			t.Fatal(err)
		}
		settle(f.rs)
		f.raw[2].Del(ctx(t), name)
		if ok, err := m.Extend(); !ok || err != nil {
			t.Fatalf("Extend = %v, %v", ok, err)
		}
		settle(f.rs)
		wantCalls(t, pools, map[string][]int{"SetNX": {1, 1, 1}, "Eval": {1, 1, 1}, "PTTL": {0, 0, 0}, "Get": {0, 0, 0}, "Set": {0, 0, 0}})
		if on := f.holding(t, name, m.Value()); !reflect.DeepEqual(on, []int{0, 1, 2}) {
			t.Errorf("after Extend the value is on %v, want [0 1 2]", on)
		}
	})
}

// wantCalls checks the calls counted per pool.
func wantCalls(t *testing.T, pools []*countingPool, want map[string][]int) {
	t.Helper()
	for call, perPool := range want {
		if _, got := callsOf(pools, call); !reflect.DeepEqual(got, perPool) {
			t.Errorf("%s per pool = %v, want %v", call, got, perPool)
		}
	}
}

// wantScriptsWithTheirHash checks that every script given to Eval carries
// the SHA-1 of its source (a Pool of the user's own may send EVALSHA with
// it as it comes) and that at most distinct different scripts were used.
func wantScriptsWithTheirHash(t *testing.T, pools []*countingPool, distinct int) {
	t.Helper()
	sources := map[string]bool{}
	for _, p := range pools {
		for _, s := range p.evalScripts() {
			sum := sha1.Sum([]byte(s.Src))
			if want := hex.EncodeToString(sum[:]); s.Hash != want {
				t.Errorf("a script given to Eval has Hash %q, want its source's SHA-1 %q", s.Hash, want)
			}
			sources[s.Src] = true
		}
	}
	if len(sources) > distinct {
		t.Errorf("%d different scripts given to Eval, want at most %d", len(sources), distinct)
	}
}

// Item 7: a release succeeds wherever redsync's does, on servers out of
// memory (maxmemory with noeviction) included, also when a waiter listens.
func TestUnlockSucceedsOnServersOutOfMemory(t *testing.T) {
	for _, oom := range [][]int{{0, 1, 2}, {2}} {
		t.Run(fmt.Sprintf("%dOf3", len(oom)), func(t *testing.T) {
			f := newFleet(t, 3)
			name := uniqueName(t)
			a := f.rs.NewMutex(name)
			if err := a.Lock(); err != nil {
				t.Fatal(err)
			}
			settle(f.rs)
			rsB, _, _ := f.process(t)
			b := rsB.NewMutex(name, redsync.WithRetryDelay(10*time.Millisecond), redsync.WithTries(1000))
			bLocked := make(chan error, 1)
			go func() { bLocked <- b.Lock() }()
			awaitWaiter(t, f, name, false)
			for _, i := range oom {
				setMaxMemory(t, f, i, "1")
			}
			ok, err := a.Unlock()
			if !ok || err != nil {
				t.Errorf("Unlock with %v out of memory = %v, %v; want true, nil", oom, ok, err)
			}
			settle(f.rs)
			for _, i := range oom {
				if v, held := f.value(t, i, name); held && v == a.Value() {
					t.Errorf("server %d (out of memory) still holds the released lock", i)
				}
			}
			for _, i := range oom {
				setMaxMemory(t, f, i, "0")
			}
			if err := within(t, "B's Lock", func() error { return <-bLocked }); err != nil {
				t.Fatalf("B's Lock once memory is back: %v", err)
			}
			if ok, err := b.Unlock(); !ok || err != nil {
				t.Errorf("B's Unlock = %v, %v", ok, err)
			}
		})
	}
}

// setMaxMemory sets maxmemory on server i, with noeviction: at "1" the
// server refuses every command that needs memory (SET), not DEL.
func setMaxMemory(t *testing.T, f *fleet, i int, bytes string) {
	t.Helper()
	if err := f.raw[i].ConfigSet(ctx(t), "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.raw[i].ConfigSet(ctx(t), "maxmemory", bytes).Err(); err != nil {
		t.Fatal(err)
	}
}
