package suite

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	goredislib "github.com/redis/go-redis/v9"
)

func TestLockSetsTheValueOnEveryServerAndUnlockDeletesIt(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name)
	if m.Name() != name {
		t.Fatalf("Name() = %q, want %q", m.Name(), name)
	}
	if m.Value() != "" || !m.Until().IsZero() {
		t.Fatalf("before Lock: Value() = %q, Until() = %v; want empty and zero", m.Value(), m.Until())
	}
	if err := m.Lock(); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	settle(f.rs)
	if m.Value() == "" {
		t.Fatal("Value() is empty after Lock")
	}
	if on := f.holding(t, name, m.Value()); !reflect.DeepEqual(on, []int{0, 1, 2}) {
		t.Fatalf("the lock's value is on servers %v, want [0 1 2]", on)
	}
	if !m.Until().After(time.Now()) {
		t.Fatalf("Until() = %v is not in the future", m.Until())
	}
	ok, err := m.Unlock()
	if !ok || err != nil {
		t.Fatalf("Unlock = %v, %v; want true, nil", ok, err)
	}
	settle(f.rs)
	if on := f.withKey(t, name); len(on) != 0 {
		t.Fatalf("after Unlock the key is still on %v", on)
	}
}

func TestTryLockOfAFreeLockSucceedsAndOfAHeldOneReturnsErrTaken(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	holder := f.rs.NewMutex(name)
	if err := holder.TryLock(); err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	settle(f.rs)
	other := f.rs.NewMutex(name)
	err := other.TryLock()
	nodes, ok := takenNodes(err)
	if !ok {
		t.Fatalf("TryLock of a held lock = %v, want an *ErrTaken", err)
	}
	if !reflect.DeepEqual(nodes, []int{0, 1, 2}) {
		t.Errorf("ErrTaken.Nodes = %v, want [0 1 2]", nodes)
	}
	if errors.Is(err, redsync.ErrFailed) {
		t.Errorf("TryLock's *ErrTaken also matches ErrFailed: %v", err)
	}
	if other.Value() != "" {
		t.Errorf("a failed TryLock left Value() = %q", other.Value())
	}
	if ok, err := holder.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
}

func TestLockWhoseLastTryFindsTheLockTakenReturnsErrTaken(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	f.set(t, name, "someone else", 10*time.Second, 0, 1, 2)
	err := f.rs.NewMutex(name, redsync.WithTries(3), redsync.WithRetryDelay(time.Millisecond)).Lock()
	nodes, ok := takenNodes(err)
	if !ok || !reflect.DeepEqual(nodes, []int{0, 1, 2}) {
		t.Fatalf("Lock = %v, want an *ErrTaken of nodes [0 1 2]", err)
	}
}

func TestExtendResetsTheExpiryOnEveryServer(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name, redsync.WithExpiry(2*time.Second))
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	until := m.Until()
	pause(300)
	ok, err := m.Extend()
	if !ok || err != nil {
		t.Fatalf("Extend = %v, %v; want true, nil", ok, err)
	}
	settle(f.rs)
	if !m.Until().After(until) {
		t.Errorf("Until() = %v after Extend, not later than %v before", m.Until(), until)
	}
	for i := range f.servers {
		if d := f.pttl(t, i, name); d <= 1800*time.Millisecond || d > 2*time.Second {
			t.Errorf("server %d: PTTL %v after Extend, want the expiry (2 s) again", i, d)
		}
	}
	if ok, err := m.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
}

func TestValidIsTrueWhileAQuorumHoldsTheValue(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name)
	// Before Lock the Mutex has no value, which no server holds: redsync
	// counts each as holding another.
	ok, err := m.Valid()
	if nodes, isTaken := takenNodes(err); ok || !isTaken || !reflect.DeepEqual(nodes, []int{0, 1, 2}) {
		t.Fatalf("Valid before Lock = %v, %v; want false, an *ErrTaken of nodes [0 1 2]", ok, err)
	}
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	settle(f.rs)
	if ok, err := m.Valid(); !ok || err != nil {
		t.Fatalf("Valid while held = %v, %v; want true, nil", ok, err)
	}
	f.raw[1].Del(ctx(t), name)
	f.raw[2].Del(ctx(t), name)
	ok, err = m.Valid()
	if ok {
		t.Fatal("Valid = true with the key on 1 server of 3")
	}
	// redsync counts a server without the value as one that holds another.
	if nodes, isTaken := takenNodes(err); !isTaken || !reflect.DeepEqual(nodes, []int{1, 2}) {
		t.Errorf("Valid's error = %v, want an *ErrTaken of nodes [1 2]", err)
	}
	settle(f.rs)
}

func TestLockOfAServerThatIsDownReportsARedisErrorNamingIt(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	f.servers[1].Kill(t)
	f.servers[2].Kill(t)
	err := f.rs.NewMutex(name, redsync.WithTries(1)).Lock()
	if err == nil {
		t.Fatal("Lock with 2 of 3 servers down succeeded")
	}
	var redisErr *redsync.RedisError
	if !errors.As(err, &redisErr) {
		t.Fatalf("Lock = %v, want a *RedisError", err)
	}
	if nodes := redisErrorNodes(err); !reflect.DeepEqual(nodes, []int{1, 2}) {
		t.Errorf("RedisError nodes = %v, want [1 2] (%v)", nodes, err)
	}
	for _, e := range redisErrorsOf(err) {
		if errors.Unwrap(e) == nil || e.Err == nil {
			t.Errorf("RedisError %v wraps no client error", e)
		}
	}
	settle(f.rs)
	if on := f.withKey(t, name); len(on) != 0 {
		t.Errorf("the failed Lock left the key on %v", on)
	}
}

func TestAServerHoldingAnotherValueIsReportedAsErrNodeTaken(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	f.set(t, name, "someone else", 10*time.Second, 0)
	f.servers[1].Kill(t)
	err := f.rs.NewMutex(name).TryLock()
	if nodes := nodeTakenNodes(err); !reflect.DeepEqual(nodes, []int{0}) {
		t.Errorf("ErrNodeTaken nodes = %v, want [0] (%v)", nodes, err)
	}
	if nodes := redisErrorNodes(err); !reflect.DeepEqual(nodes, []int{1}) {
		t.Errorf("RedisError nodes = %v, want [1] (%v)", nodes, err)
	}
	if _, isTaken := takenNodes(err); isTaken {
		t.Errorf("no quorum holds another value, yet the error is an *ErrTaken: %v", err)
	}
	settle(f.rs)
}

func TestUnlockAfterExpiryReportsErrLockAlreadyExpired(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name, redsync.WithExpiry(100*time.Millisecond))
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	settle(f.rs)
	for len(f.withKey(t, name)) != 0 {
		pause(10)
	}
	ok, err := m.Unlock()
	if ok || !errors.Is(err, redsync.ErrLockAlreadyExpired) {
		t.Fatalf("Unlock after expiry = %v, %v; want false, ErrLockAlreadyExpired", ok, err)
	}
}

func TestLockCancelledWhileWaitingReturnsErrFailed(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	f.set(t, name, "someone else", 10*time.Second, 0, 1, 2)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := f.rs.NewMutex(name).LockContext(c)
	if !errors.Is(err, redsync.ErrFailed) {
		t.Fatalf("LockContext = %v, want ErrFailed", err)
	}
	settle(f.rs)
	if on := f.withKey(t, name); !reflect.DeepEqual(on, map[int]string{0: "someone else", 1: "someone else", 2: "someone else"}) {
		t.Errorf("the keys are %v after the cancelled Lock, want the other holder's on every server", on)
	}
}

func TestDefaultExpiryIsEightSeconds(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name)
	start := time.Now()
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	settle(f.rs)
	for i := range f.servers {
		if d := f.pttl(t, i, name); d <= 7*time.Second || d > 8*time.Second {
			t.Errorf("server %d: PTTL %v after Lock, want just under 8 s", i, d)
		}
	}
	// Until is the start of the try plus the expiry less 1% for drift.
	if m.Until().Before(start.Add(7*time.Second)) || m.Until().After(end.Add(7920*time.Millisecond)) {
		t.Errorf("Until() is %v after the start of Lock (which took %v), want the start of its try plus 7.92 s",
			m.Until().Sub(start), end.Sub(start))
	}
	if ok, err := m.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
}

func TestDefaultTriesAre32(t *testing.T) {
	f, pools := countingFleet(t, 3)
	name := uniqueName(t)
	f.set(t, name, "someone else", 30*time.Second, 0, 1, 2)
	err := f.rs.NewMutex(name, redsync.WithRetryDelay(time.Millisecond)).Lock()
	if _, isTaken := takenNodes(err); !isTaken {
		t.Fatalf("Lock = %v, want an *ErrTaken", err)
	}
	settle(f.rs)
	if _, per := callsOf(pools, "SetNX"); !reflect.DeepEqual(per, []int{32, 32, 32}) {
		t.Errorf("SetNX per server = %v, want 32 tries on each", per)
	}
}

func TestWithValueReleasesAndExtendsALockTakenElsewhere(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	first := f.rs.NewMutex(name, redsync.WithExpiry(2*time.Second))
	if err := first.Lock(); err != nil {
		t.Fatal(err)
	}
	settle(f.rs)
	rs2, _, _ := f.process(t)
	second := rs2.NewMutex(name, redsync.WithExpiry(3*time.Second), redsync.WithValue(first.Value()))
	if second.Value() != first.Value() {
		t.Fatalf("Value() = %q, want the value given, %q", second.Value(), first.Value())
	}
	if ok, err := second.Extend(); !ok || err != nil {
		t.Fatalf("Extend with WithValue = %v, %v; want true, nil", ok, err)
	}
	settle(rs2)
	if d := f.pttl(t, 0, name); d <= 2*time.Second {
		t.Errorf("PTTL %v after Extend with a 3 s expiry", d)
	}
	if ok, err := second.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock with WithValue = %v, %v; want true, nil", ok, err)
	}
	settle(rs2)
	if on := f.withKey(t, name); len(on) != 0 {
		t.Fatalf("after Unlock the key is still on %v", on)
	}
	if ok, err := first.Unlock(); ok || !errors.Is(err, redsync.ErrLockAlreadyExpired) {
		t.Errorf("Unlock of the released lock = %v, %v; want false, ErrLockAlreadyExpired", ok, err)
	}
}

func TestWithSetNXOnExtendSetsTheKeyWhereItWasLost(t *testing.T) {
	for _, setNX := range []bool{false, true} {
		t.Run(fmt.Sprintf("SetNXOnExtend=%v", setNX), func(t *testing.T) {
			f := newFleet(t, 3)
			name := uniqueName(t)
			opts := []redsync.Option{}
			if setNX {
				opts = append(opts, redsync.WithSetNXOnExtend())
			}
			m := f.rs.NewMutex(name, opts...)
			if err := m.Lock(); err != nil {
				t.Fatal(err)
			}
			settle(f.rs)
			f.raw[2].Del(ctx(t), name) // as a server restarted empty
			f.set(t, name, "someone else", 10*time.Second, 1)
			ok, err := m.Extend()
			settle(f.rs)
			if setNX {
				if !ok || err != nil {
					t.Fatalf("Extend = %v, %v; want true, nil", ok, err)
				}
				if on := f.holding(t, name, m.Value()); !reflect.DeepEqual(on, []int{0, 2}) {
					t.Errorf("the value is on %v, want [0 2] (set again on 2, server 1 left to its holder)", on)
				}
			} else {
				if ok {
					t.Fatalf("Extend = true with the value on 1 server of 3")
				}
				if on := f.holding(t, name, m.Value()); !reflect.DeepEqual(on, []int{0}) {
					t.Errorf("the value is on %v, want [0]", on)
				}
			}
			if v, _ := f.value(t, 1, name); v != "someone else" {
				t.Errorf("server 1 holds %q, want the other holder's value", v)
			}
		})
	}
}

func TestWithShufflePoolsStillLocksAndNamesNodesInItsOrder(t *testing.T) {
	f := newFleet(t, 3)
	name := uniqueName(t)
	m := f.rs.NewMutex(name, redsync.WithShufflePools(true))
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
	settle(f.rs)

	// One server holds another value and one is down: the error names
	// each by its index in the shuffled order, which differs between
	// Mutexes.
	f.set(t, name, "someone else", time.Minute, 0)
	f.servers[1].Kill(t)
	seen := map[int]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		err := f.rs.NewMutex(name, redsync.WithShufflePools(true)).TryLock()
		nodes := nodeTakenNodes(err)
		if len(nodes) != 1 {
			t.Fatalf("TryLock = %v, want one ErrNodeTaken", err)
		}
		seen[nodes[0]] = true
	}
	settle(f.rs)
	if len(seen) < 2 {
		t.Errorf("in 40 shuffled Mutexes the server holding another value was always node %v", seen)
	}
}

func TestWithFailFastReturnsOnceAQuorumRefusedWithoutWaitingForAHungServer(t *testing.T) {
	// The clients never time out a read: only WithFailFast lets the
	// operation return while server 2 is paused.
	f := newFleet(t, 3, withClientOptions(func(o *goredislib.Options) { o.ReadTimeout = -1 }))
	name := uniqueName(t)
	f.set(t, name, "someone else", time.Minute, 0, 1)
	f.servers[2].Pause(t)
	err := within(t, "TryLock with WithFailFast", func() error {
		return f.rs.NewMutex(name, redsync.WithFailFast(true)).TryLock()
	})
	if nodes, ok := takenNodes(err); !ok || !reflect.DeepEqual(nodes, []int{0, 1}) {
		t.Fatalf("TryLock = %v, want an *ErrTaken of nodes [0 1]", err)
	}
	f.servers[2].Resume(t)
}
