package redsync

import (
	"context"
	"fmt"
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
	"github.com/quorumlock/redsync/internal/scripts"
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

// awaitIdleWaiter waits until the head waiter for name in rs waits, ready
// to be handed the lock, with its subscriptions confirmed by every server
// and no wake-up due: a confirmation wakes it to try (a release may have
// gone unheard before), and a try would compete with the hand-over.
func awaitIdleWaiter(t *testing.T, rs *Redsync, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s := rs.handoff.state(name)
		return s.Queued > 0 && s.Confirmed == s.Servers && s.HeadPrepared && !s.HeadWoken && s.Heard < s.Enough
	}, 5*time.Second, time.Millisecond)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestUnlockHandsTheLockOverToAWaiterOfItsProcess: the release sets the
// key straight to the waiting Lock's value on every server, so the waiter
// holds the lock without a request of its own, with a validity counted
// from before the release was sent; its Unlock then releases it as usual.
func TestUnlockHandsTheLockOverToAWaiterOfItsProcess(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := newHandOverCluster(t, n)
			const name = "handed"
			holder := c.rs.NewMutex(name)
			require.NoError(t, holder.Lock())
			c.rs.Wait() // every server holds the holder's value
			obs := &recorder{Keep: isAttempt}
			waiter := c.rs.NewMutex(name, WithObserver(obs), WithExpiry(5*time.Second))
			done := make(chan error, 1)
			go func() { done <- waiter.Lock() }()
			awaitIdleWaiter(t, c.rs, name)

			before := time.Now()
			ok, err := holder.Unlock()
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, <-done)
			after := time.Now()

			e := lastAttempt(obs)
			assert.True(t, e.HandedOver, "the waiter took a hand-over")
			assert.True(t, e.Acquired)
			assert.GreaterOrEqual(t, e.Agreed, n/2+1, "decided at a quorum")
			c.rs.Wait() // the servers beyond the quorum
			assert.Equal(t, repeat(waiter.Value(), n), c.values(t, name))
			until := waiter.Until()
			assert.True(t, until.After(before.Add(5*time.Second-waiter.drift()-time.Millisecond)), "validity from the release's start")
			assert.False(t, until.After(after.Add(5*time.Second)), "validity from no later than the release's start")
			for i, client := range c.inspect {
				ttl, err := client.PTTL(context.Background(), name).Result()
				require.NoError(t, err)
				assert.True(t, ttl > 4*time.Second && ttl <= 5*time.Second, "server %d: the waiter's expiry, got %v", i, ttl)
			}

			ok, err = waiter.Unlock()
			require.NoError(t, err)
			require.True(t, ok)
			c.rs.Wait()
			assert.Equal(t, repeat("", n), c.values(t, name))
		})
	}
}

// TestAServerWhereAnotherProcessListensReleasesAsUsual: where a waiter of
// another process listens for the name, the release leaves the key to the
// waiters that were told, so the hand-over reaches no quorum; the waiter
// releases the server that did hand over and wins by a try of its own.
func TestAServerWhereAnotherProcessListensReleasesAsUsual(t *testing.T) {
	c := newHandOverCluster(t, 3)
	const name = "shared"
	// Another process's listener on servers 0 and 1.
	var others []*goredislib.PubSub
	for _, client := range c.inspect[:2] {
		ps := client.Subscribe(context.Background(), releaseChannel(name))
		_, err := ps.Receive(context.Background())
		require.NoError(t, err)
		others = append(others, ps)
		t.Cleanup(func() { _ = ps.Close() })
	}
	holder := c.rs.NewMutex(name)
	require.NoError(t, holder.Lock())
	c.rs.Wait()
	obs := &recorder{Keep: isAttempt}
	waiter := c.rs.NewMutex(name, WithObserver(obs))
	done := make(chan error, 1)
	go func() { done <- waiter.Lock() }()
	awaitIdleWaiter(t, c.rs, name)

	ok, err := holder.Unlock()
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, <-done)
	assert.False(t, lastAttempt(obs).HandedOver, "won by a try of its own")
	c.rs.Wait() // the servers beyond the quorum
	assert.Equal(t, repeat(waiter.Value(), 3), c.values(t, name))
	for i, ps := range others {
		select {
		case msg := <-ps.Channel():
			assert.Equal(t, releaseChannel(name), msg.Channel)
		case <-time.After(5 * time.Second):
			t.Fatalf("server %d did not announce the release to the other process", i)
		}
	}
	ok, err = waiter.Unlock()
	require.NoError(t, err)
	require.True(t, ok)
}

// TestAWaiterThatGivesUpDuringAHandOverLeavesNothing: a Lock whose context
// ends while the lock is being handed over to it returns at once, and what
// the hand-over set is released once it is in.
func TestAWaiterThatGivesUpDuringAHandOverLeavesNothing(t *testing.T) {
	c := newHandOverCluster(t, 3)
	const name = "abandoned"
	holder := c.rs.NewMutex(name)
	require.NoError(t, holder.Lock())
	c.rs.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiter := c.rs.NewMutex(name)
	done := make(chan error, 1)
	go func() { done <- waiter.LockContext(ctx) }()
	awaitIdleWaiter(t, c.rs, name)

	gate := make(chan struct{})
	var held int32
	for _, h := range c.hooks {
		h.On(fakepool.Eval, fakepool.Before(func(c *fakepool.Call) error {
			if c.Script == scripts.HandOver {
				atomic.AddInt32(&held, 1)
				<-gate
			}
			return nil
		}))
	}
	unlocked := make(chan bool, 1)
	go func() {
		ok, err := holder.Unlock()
		assert.NoError(t, err)
		unlocked <- ok
	}()
	require.Eventually(t, func() bool { return atomic.LoadInt32(&held) == 3 }, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, ErrFailed)
	case <-time.After(time.Second):
		t.Fatal("the Lock did not return when its context ended")
	}
	close(gate)
	assert.True(t, <-unlocked)
	c.rs.Wait()
	assert.Equal(t, repeat("", 3), c.values(t, name), "nothing left once the hand-over is in")
	assert.Equal(t, "", waiter.Value())
}

// TestHandOversUnderContentionKeepTheLockExclusive: goroutines of one
// process take turns on a name through hand-overs, while goroutines of
// "another process" (a second Redsync on the same servers) compete; nobody
// ever finds another holder inside, and every acquisition is checked
// against the servers.
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
			// The last release may find a listener of the other Redsync
			// still subscribed (its waiter left, its UNSUBSCRIBE not yet
			// in): it then leaves the placeholder, for at most the grace.
			assert.Eventually(t, func() bool {
				return assert.ObjectsAreEqual(repeat("", n), c.values(t, name))
			}, time.Second, 10*time.Millisecond, "the servers hold %q", c.values(t, name))
		})
	}
}

// handedOver counts the acquisitions rec saw that took a hand-over.
func handedOver(rec *recorder) int64 {
	return int64(len(rec.Attempts(func(e AttemptEvent) bool { return e.Acquired && e.HandedOver })))
}

// TestEverySeventeenthUnlockInARowReleasesAsUsual: after 16 hand-overs of
// a name in a row, one Unlock releases and announces as usual, so that
// waiters a server does not know of get their chance.
func TestEverySeventeenthUnlockInARowReleasesAsUsual(t *testing.T) {
	c := newHandOverCluster(t, 1)
	counter := &recorder{Keep: isAttempt}
	var wg sync.WaitGroup
	const goroutines, each = 4, 17
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := c.rs.NewMutex("bounded", WithObserver(counter))
			for i := 0; i < each; i++ {
				if !assert.NoError(t, m.Lock()) {
					return
				}
				_, err := m.Unlock()
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	handed := handedOver(counter)
	t.Logf("%d of %d acquisitions handed over", handed, goroutines*each)
	assert.LessOrEqual(t, handed, int64(goroutines*each*handoff.MaxHandOversInARow/(handoff.MaxHandOversInARow+1)))
}

// TestHandOversToWaitersThatGiveUpLeaveNothing: waiters whose contexts end
// at random moments, also while the lock is being handed over to them,
// never find another holder inside, and leave no key behind.
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
			values := c.values(t, name)
			for i, v := range values {
				if v == handoffMarker {
					values[i] = "" // the placeholder, which lasts 50 ms at most
				}
			}
			assert.Equal(t, repeat("", n), values, "nothing left")
		})
	}
}
