package redsync

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// permitKeysLeft returns the permit slot keys of name that some server
// still holds, once the requests on their way have landed.
func (c *realCluster) permitKeysLeft(t *testing.T, name string) []string {
	t.Helper()
	c.rs.Wait()
	var left []string
	for i, client := range c.inspect {
		keys, err := client.Keys(context.Background(), "{"+name+"}:permit:*").Result()
		require.NoError(t, err)
		for _, k := range keys {
			left = append(left, k+"@"+string(rune('0'+i)))
		}
	}
	return left
}

// permitValues returns the values of the permit slot keys of name that
// the servers hold.
func (c *realCluster) permitValues(t *testing.T, name string) []string {
	t.Helper()
	c.rs.Wait()
	var values []string
	for _, client := range c.inspect {
		keys, err := client.Keys(context.Background(), "{"+name+"}:permit:*").Result()
		require.NoError(t, err)
		for _, k := range keys {
			v, err := client.Get(context.Background(), k).Result()
			require.NoError(t, err)
			values = append(values, v)
		}
	}
	return values
}

func TestSemaphoreHoldsAtMostItsPermitsUnderContention(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		sem := c.rs.NewSemaphore("workers", 4, WithRetryDelay(20*time.Millisecond))
		var held, highest atomic.Int32
		var wg sync.WaitGroup
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				weight := 1 + g%2 // weights of 1 and 2
				for i := 0; i < 3; i++ {
					lease, err := sem.Acquire(context.Background(), weight)
					if !assert.NoError(t, err) {
						return
					}
					now := held.Add(int32(weight))
					assert.LessOrEqual(t, now, int32(4), "more than 4 permits held at once")
					for {
						h := highest.Load()
						if now <= h || highest.CompareAndSwap(h, now) {
							break
						}
					}
					time.Sleep(2 * time.Millisecond)
					held.Add(-int32(weight))
					assert.NoError(t, lease.Release(context.Background()))
				}
			}()
		}
		wg.Wait()
		assert.Empty(t, c.permitKeysLeft(t, "workers"))
		t.Logf("highest weight held at once: %d of 4", highest.Load())
	})
}

func TestACrashedHoldersPermitComesBackAtItsExpiry(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		sem := c.rs.NewSemaphore("crash", 1, WithExpiry(time.Second), WithTimeoutFactor(0.3), WithRetryDelay(20*time.Millisecond))
		lease, err := sem.TryAcquire(context.Background(), 1)
		require.NoError(t, err)
		_ = lease // the holder crashes: never released nor extended
		_, err = sem.TryAcquire(context.Background(), 1)
		require.ErrorIs(t, err, ErrFailed, "a second holder of the one permit")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		next, err := sem.Acquire(ctx, 1)
		require.NoError(t, err)
		assert.False(t, time.Now().Before(lease.Until()), "acquired before the crashed lease's validity ended")
		require.NoError(t, next.Release(context.Background()))
		// The crashed holder's key may outlive its validity on a
		// server by the drift allowance and the time acquiring took.
		assert.Eventually(t, func() bool { return len(c.permitKeysLeft(t, "crash")) == 0 }, 3*time.Second, 10*time.Millisecond)
	})
}

func TestACancelledAcquireLeavesNothing(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		sem := c.rs.NewSemaphore("cancel", 3)
		holder, err := sem.Acquire(context.Background(), 2)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err = sem.Acquire(ctx, 2)
		assert.ErrorIs(t, err, ErrFailed)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		// What is left is the holder's: its 2 slots on each server of its
		// quorum (a server it missed may hold nothing).
		assert.ElementsMatch(t, repeated(holder.lease.value, len(c.permitKeysLeft(t, "cancel"))), c.permitValues(t, "cancel"))
		assert.GreaterOrEqual(t, len(c.permitKeysLeft(t, "cancel")), 2*(len(c.servers)/2+1))
		require.NoError(t, holder.Release(context.Background()))
		assert.Empty(t, c.permitKeysLeft(t, "cancel"))
	})
}

func TestAReleaseWakesAWaiterBeforeItsRetryDelay(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		// A retry delay longer than the test's deadline: only the
		// release announcement can wake the waiter in time.
		sem := c.rs.NewSemaphore("wake", 2, WithRetryDelay(time.Minute))
		lease, err := sem.Acquire(context.Background(), 2)
		require.NoError(t, err)
		got := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			l, err := sem.Acquire(ctx, 1)
			if err == nil {
				// Its outcome is not what this test is about.
				_ = l.Release(context.Background())
			}
			got <- err
		}()
		require.Eventually(t, func() bool {
			return c.rs.handoff.state(sem.announce).HeadWaiting && c.rs.handoff.state(sem.announce).Confirmed == len(c.servers)
		}, 5*time.Second, time.Millisecond, "the waiter never waited")
		require.NoError(t, lease.Release(context.Background()))
		require.NoError(t, <-got)
	})
}

func TestLeaseKeepAliveAndRunAcquired(t *testing.T) {
	c := newRealCluster(t, 3)
	sem := c.rs.NewSemaphore("keep", 2, WithExpiry(300*time.Millisecond), WithTimeoutFactor(0.3))
	err := sem.RunAcquired(context.Background(), 2, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(1200 * time.Millisecond):
		}
		_, err := sem.TryAcquire(context.Background(), 1)
		assert.ErrorIs(t, err, ErrFailed, "a permit free while both are kept alive")
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, c.permitKeysLeft(t, "keep"))

	lease, err := sem.Acquire(context.Background(), 1)
	require.NoError(t, err)
	before := lease.Until()
	time.Sleep(5 * time.Millisecond)
	ok, err := lease.Extend(context.Background())
	require.True(t, ok, err)
	assert.True(t, lease.Until().After(before))
	require.NoError(t, lease.Release(context.Background()))
	assert.ErrorIs(t, lease.Release(context.Background()), ErrNotHeld)
	ok, err = lease.Extend(context.Background())
	assert.False(t, ok)
	assert.ErrorIs(t, err, ErrNotHeld)
}

func TestSemaphoreReportsBadArguments(t *testing.T) {
	client := goredislib.NewClient(&goredislib.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	rs := New(goredis.NewPool(client))
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		sem     *Semaphore
		weight  int
		arg     string
		problem string
	}{
		{"NoPermits", rs.NewSemaphore("s", 0), 1, "permits", "at least 1"},
		{"EmptyName", rs.NewSemaphore("", 2), 1, "name", "empty"},
		{"WeightZero", rs.NewSemaphore("s", 2), 0, "weight", "from 1 to"},
		{"WeightAbovePermits", rs.NewSemaphore("s", 2), 3, "weight", "from 1 to"},
		{"WithValue", rs.NewSemaphore("s", 2, WithValue("v")), 1, "WithValue", "value of its own"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.sem.Acquire(ctx, tt.weight)
			var argErr *ArgumentError
			require.ErrorAs(t, err, &argErr)
			assert.Equal(t, tt.arg, argErr.Arg)
			assert.True(t, strings.Contains(argErr.Problem, tt.problem), argErr.Problem)
			_, err = tt.sem.TryAcquire(ctx, tt.weight)
			assert.ErrorAs(t, err, &argErr)
			assert.ErrorIs(t, tt.sem.RunAcquired(ctx, tt.weight, func(context.Context) error { return nil }), ErrInvalidArgument)
		})
	}
}

// doneOps records the Op and Name of every Done.
type doneOps struct {
	BaseObserver
	mu   sync.Mutex
	done []string
}

func (o *doneOps) Done(_ context.Context, e DoneEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, e.Op.String()+" "+e.Name+" "+e.Outcome())
}

func TestSemaphoreAndMultiMutexOperationsAreObserved(t *testing.T) {
	c := newRealCluster(t, 3)
	obs := &doneOps{}
	c.rs.SetObserver(obs)
	sem := c.rs.NewSemaphore("seen", 1)
	lease, err := sem.Acquire(context.Background(), 1)
	require.NoError(t, err)
	_, err = sem.TryAcquire(context.Background(), 1)
	require.Error(t, err)
	ok, err := lease.Extend(context.Background())
	require.True(t, ok, err)
	require.NoError(t, lease.Release(context.Background()))
	mm := c.rs.NewMultiMutex([]string{"p", "q"})
	require.NoError(t, mm.Lock())
	ok, err = mm.Unlock()
	require.True(t, ok, err)
	assert.Equal(t, []string{
		"acquire seen ok", "acquire seen taken", "extend seen ok", "release seen ok",
		"multilock p,q ok", "multiunlock p,q ok",
	}, obs.done)
}

// otherProcess returns a Redsync over c's servers with connections of its
// own: its waiters queue apart from c.rs's, as another process's would.
func otherProcess(t *testing.T, c *realCluster) *Redsync {
	t.Helper()
	var ps []redis.Pool
	for _, s := range c.servers {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		ps = append(ps, goredis.NewPool(client))
	}
	rs := New(ps...)
	t.Cleanup(rs.Wait)
	return rs
}

// acquireLater runs sem.Acquire(weight) on a goroutine, for up to 20
// seconds; the lease, or the error, comes on the channel.
func acquireLater(sem *Semaphore, weight int) <-chan *Lease {
	got := make(chan *Lease, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l, _ := sem.Acquire(ctx, weight)
		got <- l
	}()
	return got
}

func TestAReleaseWakesAWaiterOfAnotherProcess(t *testing.T) {
	forEachSize(t, func(t *testing.T, c *realCluster) {
		holder := c.rs.NewSemaphore("wake", 1)
		lease, err := holder.Acquire(context.Background(), 1)
		require.NoError(t, err)
		other := otherProcess(t, c)
		// A retry delay longer than the test's deadline: only the servers'
		// announcement of the release can wake the waiter in time.
		sem := other.NewSemaphore("wake", 1, WithRetryDelay(time.Minute))
		got := acquireLater(sem, 1)
		require.Eventually(t, func() bool {
			s := other.handoff.state(sem.announce)
			return s.HeadWaiting && s.Confirmed == len(c.servers)
		}, 5*time.Second, time.Millisecond, "the waiter never waited")
		require.NoError(t, lease.Release(context.Background()))
		l := <-got
		require.NotNil(t, l, "the waiter of the other process was not woken")
		require.NoError(t, l.Release(context.Background()))
	})
}

// In a process, waiters take turns: an Acquire that comes while others
// wait queues behind them, even when the permits it asks for are free
// (as golang.org/x/sync/semaphore's Weighted does), and each release wakes
// the first.
func TestAcquiresOfOneProcessTakeTurns(t *testing.T) {
	c := newRealCluster(t, 3)
	sem := c.rs.NewSemaphore("turns", 2, WithRetryDelay(time.Minute))
	lease, err := sem.Acquire(context.Background(), 1)
	require.NoError(t, err)
	first := acquireLater(sem, 2)
	require.Eventually(t, func() bool {
		s := c.rs.handoff.state(sem.announce)
		return s.HeadWaiting && s.Confirmed == len(c.servers)
	}, 5*time.Second, time.Millisecond, "the first waiter never waited")
	// One permit is free, but the first waiter's turn comes first.
	second := acquireLater(sem, 1)
	require.Eventually(t, func() bool { return c.rs.handoff.state(sem.announce).Queued == 2 }, 5*time.Second, time.Millisecond)
	held := 0 // c.permitKeysLeft would wait for the waiters' listeners
	for _, client := range c.inspect {
		keys, err := client.Keys(context.Background(), "{turns}:permit:*").Result()
		require.NoError(t, err)
		held += len(keys)
	}
	assert.Equal(t, len(c.servers), held, "the second waiter took the free permit")
	require.NoError(t, lease.Release(context.Background()))
	l := <-first
	require.NotNil(t, l, "the first waiter did not get its permits")
	require.NoError(t, l.Release(context.Background()))
	l = <-second
	require.NotNil(t, l, "the second waiter did not get its permit")
	require.NoError(t, l.Release(context.Background()))
}
