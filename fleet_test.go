package redsync

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// handOverCluster is a Redsync over n real servers whose pools run hooks
// (and still listen), with a client per server to look at them.
type handOverCluster struct {
	rs      *Redsync
	hooks   []*fakepool.Pool
	inspect []*goredislib.Client
}

func newHandOverCluster(t *testing.T, n int) *handOverCluster {
	t.Helper()
	c := &handOverCluster{}
	pools := make([]redis.Pool, n)
	for i, s := range redistest.Start(t, n) {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pool := goredis.NewPool(client)
		hook := fakepool.New(pool)
		c.hooks = append(c.hooks, hook)
		pools[i] = hook.Listening()
		c.inspect = append(c.inspect, s.Client(t))
	}
	c.rs = New(pools...)
	t.Cleanup(c.rs.Wait)
	return c
}

// values returns what each server holds under name ("" when missing).
func (c *handOverCluster) values(t *testing.T, name string) []string {
	t.Helper()
	out := make([]string, len(c.inspect))
	for i, client := range c.inspect {
		v, err := client.Get(context.Background(), name).Result()
		if err != goredislib.Nil {
			require.NoError(t, err)
		}
		out[i] = v
	}
	return out
}

// awaitIdleWaiter waits until the head waiter for name in rs waits, queued
// to be handed the lock, with its subscriptions confirmed by every server
// and no wake-up due: a confirmation wakes it to try (a release may have
// gone unheard before), and a try would compete with the hand-over.
func awaitIdleWaiter(t *testing.T, rs *Redsync, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s := rs.handoff.state(name)
		return s.Queued > 0 && s.Confirmed == s.Servers && s.HeadQueued && !s.HeadWoken && s.Heard < s.Enough
	}, 5*time.Second, time.Millisecond)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestHandOversUnderContentionKeepTheLockExclusive: goroutines of two
// "processes" (two Redsyncs on the same servers) take turns on a name
// through the fleet queue's hand-overs; nobody ever finds another holder
// inside, and nothing is left on the servers after.
func TestHandOversUnderContentionKeepTheLockExclusive(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := newHandOverCluster(t, n)
			pools := make([]redis.Pool, n)
			for i, h := range c.hooks {
				pools[i] = h.Inner() // the same servers, another Redsync
			}
			other := New(pools...)
			t.Cleanup(other.Wait)
			const name = "turns"
			var (
				inside   int32
				handed   int64
				wg       sync.WaitGroup
				observer = &recorder{Keep: isAttempt}
			)
			for g := 0; g < 8; g++ {
				rs := c.rs
				if g%4 == 3 {
					rs = other
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := rs.NewMutex(name, WithObserver(observer))
					for i := 0; i < 15; i++ {
						if !assert.NoError(t, m.Lock()) {
							return
						}
						assert.Equal(t, int32(1), atomic.AddInt32(&inside, 1))
						time.Sleep(500 * time.Microsecond)
						assert.Equal(t, int32(1), atomic.LoadInt32(&inside))
						atomic.AddInt32(&inside, -1)
						ok, err := m.Unlock()
						assert.NoError(t, err)
						assert.True(t, ok)
					}
				}()
			}
			wg.Wait()
			handed = handedOver(observer)
			t.Logf("%d of 120 acquisitions handed over", handed)
			assert.Positive(t, handed)
			c.rs.Wait()
			other.Wait()
			assert.Equal(t, repeat("", n), c.values(t, name))
			c.assertNoQueue(t, name)
		})
	}
}

// handedOver counts the acquisitions rec saw that took a hand-over.
func handedOver(rec *recorder) int64 {
	return int64(len(rec.Attempts(func(e AttemptEvent) bool { return e.Acquired && e.HandedOver })))
}

// TestHandOversToWaitersThatGiveUpLeaveNothing: waiters whose contexts end
// at random moments, also while the lock is being handed over to them,
// never find another holder inside, and leave no key and no queue entry
// behind.
func TestHandOversToWaitersThatGiveUpLeaveNothing(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := newHandOverCluster(t, n)
			const name = "impatient"
			var (
				inside   int32
				wg       sync.WaitGroup
				acquired int64
				gaveUp   int64
				counter  = &recorder{Keep: isAttempt}
			)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					m := c.rs.NewMutex(name, WithObserver(counter))
					for i := 0; i < 30; i++ {
						// Between 0 and 6 ms: about as long as a hand-over,
						// or a few.
						wait := time.Duration((g*31+i*17)%60) * 100 * time.Microsecond
						ctx, cancel := context.WithTimeout(context.Background(), wait)
						err := m.LockContext(ctx)
						cancel()
						if err != nil {
							assert.ErrorIs(t, err, ErrFailed)
							atomic.AddInt64(&gaveUp, 1)
							continue
						}
						atomic.AddInt64(&acquired, 1)
						assert.Equal(t, int32(1), atomic.AddInt32(&inside, 1))
						time.Sleep(200 * time.Microsecond)
						atomic.AddInt32(&inside, -1)
						_, err = m.Unlock()
						assert.NoError(t, err)
					}
				}(g)
			}
			wg.Wait()
			c.rs.Wait()
			t.Logf("%d acquired (%d handed over), %d gave up", acquired, handedOver(counter), gaveUp)
			assert.Positive(t, acquired)
			assert.Positive(t, gaveUp)
			assert.Equal(t, repeat("", n), c.values(t, name), "nothing left")
			c.assertNoQueue(t, name)
		})
	}
}

// assertNoQueue asserts that no server keeps a fleet queue entry for name.
func (c *handOverCluster) assertNoQueue(t *testing.T, name string) {
	t.Helper()
	queue, entries, _ := handoff.QueueKeys(name)
	for i, client := range c.inspect {
		n, err := client.ZCard(context.Background(), queue).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "server %d queues %d values", i, n)
		h, err := client.HLen(context.Background(), entries).Result()
		require.NoError(t, err)
		assert.Zero(t, h, "server %d keeps %d entries", i, h)
	}
}

// TestAReleaseHandsTheLockToTheWaiterOfAnotherProcess: the release sets
// the key straight to the value of the waiter of another Redsync, which
// learns it from the announcement and holds the lock without another
// attempt; waiters of three Redsyncs get it in the order they queued.
func TestAReleaseHandsTheLockToTheWaiterOfAnotherProcess(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := newHandOverCluster(t, n)
			const name = "fleet"
			holder := c.rs.NewMutex(name)
			require.NoError(t, holder.Lock())
			type turn struct {
				who int
				m   *Mutex
			}
			turns := make(chan turn, 3)
			observer := &recorder{Keep: isAttempt}
			var wg sync.WaitGroup
			for who := 0; who < 3; who++ {
				other := New(c.innerPools(t)...)
				t.Cleanup(other.Wait)
				m := other.NewMutex(name, WithObserver(observer), WithRetryDelay(time.Minute))
				wg.Add(1)
				go func() {
					defer wg.Done()
					if assert.NoError(t, m.Lock()) {
						turns <- turn{who, m}
					}
				}()
				awaitIdleWaiter(t, other, name)
			}
			for want := 0; want < 3; want++ {
				ok, err := holder.Unlock()
				require.NoError(t, err)
				require.True(t, ok)
				got := <-turns
				assert.Equal(t, want, got.who, "the waiters take turns in the order they queued")
				assert.Greater(t, time.Until(got.m.Until()), 7*time.Second, "a validity of about an expiry")
				// A quorum handed it over; the release on the last server
				// may still be on its way.
				assert.Eventually(t, func() bool {
					return slices.Equal(repeat(got.m.Value(), n), c.values(t, name))
				}, 5*time.Second, time.Millisecond)
				holder = got.m
			}
			ok, err := holder.Unlock()
			require.NoError(t, err)
			require.True(t, ok)
			wg.Wait()
			// Each took a hand-over: learned from the announcement, or, on
			// a loaded machine, by an attempt of its own (a renewal) that
			// found the key set to its value before the announcement was
			// read.
			assert.GreaterOrEqual(t, handedOver(observer), int64(1))
			// Before the hand-over, each waiter attempted to queue, and
			// again once its subscriptions were confirmed (a release may
			// have gone unheard before); a waiter that waits longer than
			// fleetStay (a loaded machine) renews its lease with one more.
			assert.LessOrEqual(t, len(observer.Attempts()), 12)
			assert.Eventually(t, func() bool { return slices.Equal(repeat("", n), c.values(t, name)) }, 5*time.Second, time.Millisecond)
			c.assertNoQueue(t, name)
		})
	}
}

// innerPools returns new pools on c's servers, as another process would
// make them.
func (c *handOverCluster) innerPools(t *testing.T) []redis.Pool {
	t.Helper()
	pools := make([]redis.Pool, len(c.inspect))
	for i, inspect := range c.inspect {
		client := goredislib.NewClient(&goredislib.Options{Addr: inspect.Options().Addr})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	return pools
}

// processPools returns pools on servers, as one more process would make
// them.
func processPools(t *testing.T, servers []*redistest.Server) []redis.Pool {
	t.Helper()
	pools := make([]redis.Pool, len(servers))
	for i, s := range servers {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	return pools
}

// queueDeadWaiter writes, on every server, a fleet queue entry for value
// at ticket as a waiter would that stopped at once: its lease runs for
// leaseMS from the server's clock, its key would live expiryMS.
func queueDeadWaiter(t *testing.T, servers []*redistest.Server, name, value string, ticket, leaseMS, expiryMS int64) {
	t.Helper()
	queue, entries, ok := handoff.QueueKeys(name)
	require.True(t, ok)
	ctx := context.Background()
	for _, s := range servers {
		client := s.Client(t)
		now, err := client.Time(ctx).Result()
		require.NoError(t, err)
		ms := now.UnixMilli()
		require.NoError(t, client.ZAdd(ctx, queue, goredislib.Z{Score: float64(ticket), Member: value}).Err())
		require.NoError(t, client.HSet(ctx, entries, value, fmt.Sprintf("%d %d %d", ms, ms+leaseMS, expiryMS)).Err())
		require.NoError(t, client.PExpire(ctx, queue, 3*fleetLease).Err())
		require.NoError(t, client.PExpire(ctx, entries, 3*fleetLease).Err())
	}
}

// TestDeadWaitersStallTheQueueOnceAtMost: waiters that stopped without
// leaving (a crashed process) are passed over once their lease ends. The
// first of them may be handed the key by a release within its lease; the
// queue then waits for that key's expiry, once: the others' leases have
// ended by then. (Redisson's fair lock waits 5 s per dead waiter.)
func TestDeadWaitersStallTheQueueOnceAtMost(t *testing.T) {
	servers := redistest.Start(t, 3)
	rs := New(processPools(t, servers)...)
	t.Cleanup(rs.Wait)
	const name = "fleet-dead-waiters"
	holder := rs.NewMutex(name)
	require.NoError(t, holder.Lock())

	const deadExpiry = 400 // ms, the dead waiters' own expiry
	past := time.Now().Add(-time.Minute).UnixMicro()
	for i := 0; i < 5; i++ {
		queueDeadWaiter(t, servers, name, fmt.Sprintf("dead-%d", i), past+int64(i), fleetLease.Milliseconds(), deadExpiry)
	}
	other := New(processPools(t, servers)...)
	t.Cleanup(other.Wait)
	waiter := other.NewMutex(name, WithRetryDelay(time.Minute))
	done := make(chan error, 1)
	go func() { done <- waiter.Lock() }()
	awaitIdleWaiter(t, other, name)

	released := time.Now()
	ok, err := holder.Unlock()
	require.True(t, ok, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(fleetLease + deadExpiry*time.Millisecond + 2*time.Second):
		t.Fatal("the queue stalled behind dead waiters beyond one lease and one expiry")
	}
	t.Logf("the live waiter held the lock %v after the release, behind 5 dead waiters", time.Since(released).Round(time.Millisecond))
	ok, err = waiter.Unlock()
	require.True(t, ok, err)
	queue, entries, _ := handoff.QueueKeys(name)
	for i, s := range servers {
		keys, err := s.Client(t).Keys(context.Background(), "*").Result()
		require.NoError(t, err)
		assert.Empty(t, keys, "server %d keeps keys of %s (%s, %s)", i, name, queue, entries)
		if len(keys) > 0 {
			all, _ := s.Client(t).HGetAll(context.Background(), entries).Result()
			t.Logf("entries: %v", all)
		}
	}
}

// TestServersThatDisagreeMidQueueNeitherDeadlockNorSplit: with servers
// paused and restarted empty while waiters of several processes queue,
// the servers know different waiters and may hand the key to different
// ones. The rule: a waiter holding some servers and no quorum gives them
// up after a short grace and queues again at its place; every waiter gets
// the lock in turn, one at a time.
func TestServersThatDisagreeMidQueueNeitherDeadlockNorSplit(t *testing.T) {
	servers := redistest.Start(t, 3)
	const name = "fleet-disagree"
	var holding, overlaps, acquired atomic.Int32
	hold := func(m *Mutex) {
		if holding.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(2 * time.Millisecond)
		holding.Add(-1)
		_, _ = m.Unlock()
	}
	const waiters = 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := func(rounds int) {
		rs := New(processPools(t, servers)...)
		t.Cleanup(rs.Wait)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				m := rs.NewMutex(name, WithExpiry(2*time.Second), WithRetryDelay(20*time.Millisecond), WithTries(1000))
				if err := m.LockContext(ctx); err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				acquired.Add(1)
				hold(m)
			}
		}()
	}
	for i := 0; i < waiters; i++ {
		start(40)
	}
	// While they take turns: server 2 paused, server 1 restarted empty
	// (its queue gone), then server 2 resumed and server 0 restarted.
	time.Sleep(50 * time.Millisecond)
	servers[2].Pause(t)
	time.Sleep(100 * time.Millisecond)
	servers[1].Restart(t)
	time.Sleep(100 * time.Millisecond)
	servers[2].Resume(t)
	time.Sleep(100 * time.Millisecond)
	servers[0].Restart(t)
	wg.Wait()
	assert.Zero(t, overlaps.Load(), "two holders at once")
	assert.Equal(t, int32(waiters*40), acquired.Load(), "every Lock got the lock")
}

// TestALockThatDoesNotQueueGetsTurnsOnABusyName: queued waiters would keep
// a busy key among themselves; every fleetRun of hand-overs a release
// leaves it free for fleetWindow, in which a Lock that does not queue
// (here without hand-off, polling as redsync's does) may take it.
func TestALockThatDoesNotQueueGetsTurnsOnABusyName(t *testing.T) {
	servers := redistest.Start(t, 3)
	const name = "fleet-outsider"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var busy atomic.Int64
	for p := 0; p < 2; p++ {
		rs := New(processPools(t, servers)...)
		t.Cleanup(rs.Wait)
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					m := rs.NewMutex(name, WithTries(1000))
					if m.LockContext(ctx) != nil {
						continue
					}
					busy.Add(1)
					time.Sleep(time.Millisecond)
					_, _ = m.Unlock()
				}
			}()
		}
	}
	require.Eventually(t, func() bool { return busy.Load() > 100 }, 10*time.Second, time.Millisecond, "the name never got busy")
	outsider := New(processPools(t, servers)...)
	t.Cleanup(outsider.Wait)
	m := outsider.NewMutex(name, WithHandoff(false), WithTries(200)) // up to 200 polls, about 30 s
	before := busy.Load()
	err := m.Lock()
	cancel()
	wg.Wait()
	require.NoError(t, err, "the outsider never got the lock")
	t.Logf("the outsider got the lock after %d acquisitions by queued waiters", busy.Load()-before)
	ok, err := m.Unlock()
	require.True(t, ok, err)
}

// TestAFencedLockHandedOverGetsALargerToken: fenced waiters queue too; the
// release that hands the key over reads the counter for the waiter, whose
// token, stored in a quorum before Lock returns, is larger than the
// releaser's.
func TestAFencedLockHandedOverGetsALargerToken(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			servers := redistest.Start(t, n)
			const name = "fleet-fenced"
			first := New(processPools(t, servers)...)
			t.Cleanup(first.Wait)
			holder := first.NewMutex(name, WithFencing(true))
			require.NoError(t, holder.Lock())
			observer := &recorder{Keep: isAttempt}
			type turn struct {
				who int
				m   *Mutex
			}
			turns := make(chan turn, 3)
			for who := 0; who < 3; who++ {
				other := New(processPools(t, servers)...)
				t.Cleanup(other.Wait)
				m := other.NewMutex(name, WithFencing(true), WithObserver(observer), WithRetryDelay(time.Minute))
				go func() {
					if assert.NoError(t, m.Lock()) {
						turns <- turn{who, m}
					}
				}()
				awaitIdleWaiter(t, other, name)
			}
			for want := 0; want < 3; want++ {
				ok, err := holder.Unlock()
				require.True(t, ok, err)
				got := <-turns
				assert.Equal(t, want, got.who, "the waiters take turns in the order they queued")
				assert.Greater(t, got.m.Token(), holder.Token(), "a token larger than the releaser's")
				storing := 0
				for _, s := range servers {
					stored, err := s.Client(t).Get(context.Background(), fenceKey(name)).Uint64()
					require.NoError(t, err)
					if stored >= got.m.Token() {
						storing++
					}
				}
				assert.GreaterOrEqual(t, storing, n/2+1, "a quorum stores the token")
				holder = got.m
			}
			ok, err := holder.Unlock()
			require.True(t, ok, err)
			assert.GreaterOrEqual(t, handedOver(observer), int64(1), "hand-overs (or attempts that found the key handed over)")
		})
	}
}
