package primtest

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
)

// permits returns, per server, the values of the permit slots of the
// semaphore name that it holds, sorted.
func (c *cluster) permits(t *testing.T, name string) [][]string {
	t.Helper()
	c.wait()
	out := make([][]string, len(c.inspect))
	ctx := context.Background()
	for i, client := range c.inspect {
		keys, err := client.Keys(ctx, "{"+name+"}:permit:*").Result()
		require.NoError(t, err, "server %d", i)
		for _, k := range keys {
			v, err := client.Get(ctx, k).Result()
			require.NoError(t, err, "server %d", i)
			out[i] = append(out[i], v)
		}
		sort.Strings(out[i])
	}
	return out
}

// semaphoreReleases is the name under which a semaphore's releases are
// announced (see Semaphore in semaphore.go), to wait for its listeners.
func semaphoreReleases(name string) string { return "{" + name + "}:permits" }

func testSemaphoreHoldsAtMostItsPermitsAmongManyGoroutines(t *testing.T, c *cluster) {
	const permits, goroutines, rounds = 3, 8, 3
	name := c.key("sem")
	var held, most atomic.Int32
	var wg sync.WaitGroup
	for _, rs := range []*redsync.Redsync{c.rs, c.process(t)} {
		sem := rs.NewSemaphore(name, permits, redsync.WithRetryDelay(10*time.Millisecond), redsync.WithTries(1000))
		for g := range goroutines / 2 {
			wg.Go(func() {
				weight := 1 + g%2
				for range rounds {
					lease, err := sem.Acquire(context.Background(), weight)
					if !assert.NoError(t, err) {
						return
					}
					now := held.Add(int32(weight))
					assert.LessOrEqual(t, now, int32(permits), "more weight held than there are permits")
					for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
					}
					time.Sleep(time.Millisecond)
					held.Add(-int32(weight))
					assert.NoError(t, lease.Release(context.Background()))
				}
			})
		}
	}
	wg.Wait()
	c.assertNothingLeft(t)
	t.Logf("the most weight held at once: %d of %d", most.Load(), permits)
}

func testSemaphoreTryAcquireOnAFullSemaphoreIsRefused(t *testing.T, c *cluster) {
	ctx := context.Background()
	name := c.key("sem")
	// Tries and a retry delay that a TryAcquire that waited would show:
	// it makes one try.
	sem := c.rs.NewSemaphore(name, 3, neverRetry, redsync.WithTries(1000))
	one, err := sem.TryAcquire(ctx, 1)
	require.NoError(t, err)
	two, err := c.process(t).NewSemaphore(name, 3).TryAcquire(ctx, 2)
	require.NoError(t, err, "another process takes the other two permits")
	assert.Equal(t, 2, two.Weight())
	for i, values := range c.permits(t, name) {
		assert.Len(t, values, 3, "server %d holds every permit", i)
	}

	_, err = sem.TryAcquire(ctx, 1)
	require.ErrorIs(t, err, redsync.ErrFailed, "a permit of a full semaphore")
	var taken *redsync.ErrTaken
	assert.ErrorAs(t, err, &taken)
	require.NoError(t, one.Release(ctx))
	_, err = sem.TryAcquire(ctx, 2)
	assert.ErrorIs(t, err, redsync.ErrFailed, "two permits with one free")
	again, err := sem.TryAcquire(ctx, 1)
	require.NoError(t, err, "the permit released")

	require.NoError(t, again.Release(ctx))
	require.NoError(t, two.Release(ctx))
	assert.ErrorIs(t, two.Release(ctx), redsync.ErrNotHeld)
	c.assertNothingLeft(t)
}

func testSemaphoreReleaseWakesAnAcquire(t *testing.T, c *cluster) {
	if !c.subscribes {
		t.Skip("the pool is not a redis.Subscriber: waiters poll")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := c.key("sem")
	lease, err := c.rs.NewSemaphore(name, 2).Acquire(ctx, 2)
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		l, err := c.process(t).NewSemaphore(name, 2, neverRetry).Acquire(ctx, 1)
		if err == nil {
			err = l.Release(context.Background())
		}
		got <- err
	}()
	c.waitForListeners(t, semaphoreReleases(name))
	select {
	case err := <-got:
		t.Fatalf("Acquire returned while every permit was held: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	require.NoError(t, lease.Release(ctx))
	require.NoError(t, <-got, "woken by the release, long before its retry delay")
	c.assertNothingLeft(t)
}

func testSemaphoreCancelledAcquireLeavesNoKey(t *testing.T, c *cluster) {
	name := c.key("sem")
	holder, err := c.rs.NewSemaphore(name, 3).Acquire(context.Background(), 2)
	require.NoError(t, err)
	before, keys := c.permits(t, name), c.snapshot(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// Tries enough that the deadline ends the wait.
	_, err = c.process(t).NewSemaphore(name, 3, fastRetry, redsync.WithTries(1000)).Acquire(ctx, 2)
	assert.ErrorIs(t, err, redsync.ErrFailed)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, before, c.permits(t, name), "the cancelled Acquire left permits behind")
	assert.Equal(t, keys, c.snapshot(t), "the cancelled Acquire changed the servers")

	require.NoError(t, holder.Release(context.Background()))
	c.assertNothingLeft(t)
}

func testSemaphoreCrashedHoldersPermitReturnsAtItsExpiry(t *testing.T, c *cluster) {
	name := c.key("sem")
	// A short expiry, per-server deadlines (a fifth of it) that a busy
	// machine running the race detector mostly keeps, and tries enough
	// for the ones it does not.
	opts := []redsync.Option{redsync.WithExpiry(time.Second), redsync.WithTimeoutFactor(0.2),
		redsync.WithRetryDelay(10 * time.Millisecond), redsync.WithTries(1000)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	crashed, err := c.process(t).NewSemaphore(name, 2, opts...).Acquire(ctx, 2)
	require.NoError(t, err)
	// The holder crashes: its lease is never released nor extended.

	sem := c.rs.NewSemaphore(name, 2, opts...)
	early, err := sem.TryAcquire(ctx, 1)
	if err == nil {
		// A machine stalled past the expiry: the permit was free.
		assert.False(t, time.Now().Before(crashed.Until()), "acquired within the crashed holder's validity")
		if err := early.Release(ctx); err != nil {
			t.Logf("releasing the permit (it expires anyway): %v", err)
		}
	} else {
		require.ErrorIs(t, err, redsync.ErrFailed, "a permit while the crashed holder's lease lasts")
	}
	lease, err := sem.Acquire(ctx, 2)
	require.NoError(t, err, "the crashed holder's permits came back")
	assert.False(t, time.Now().Before(crashed.Until()), "acquired within the crashed holder's validity")
	require.NoError(t, lease.Release(context.Background()))
	// The crashed holder's keys may outlive its validity by the drift
	// allowance and the time acquiring took on a server that missed the
	// quorum: they expire by themselves.
	c.assertNothingLeft(t)
}

func testSemaphoreBadArgumentsAreArgumentErrors(t *testing.T, c *cluster) {
	ctx := context.Background()
	name := c.key("sem")
	for _, tt := range []struct {
		what   string
		sem    *redsync.Semaphore
		weight int
		arg    string
	}{
		{"no permits", c.rs.NewSemaphore(name, 0), 1, "permits"},
		{"negative permits", c.rs.NewSemaphore(name, -1), 1, "permits"},
		{"empty name", c.rs.NewSemaphore("", 2), 1, "name"},
		{"weight 0", c.rs.NewSemaphore(name, 2), 0, "weight"},
		{"weight above the permits", c.rs.NewSemaphore(name, 2), 3, "weight"},
		{"bad option", c.rs.NewSemaphore(name, 2, redsync.WithExpiry(0)), 1, "WithExpiry"},
		{"nil ctx", c.rs.NewSemaphore(name, 2), 1, "ctx"},
	} {
		ctx := ctx
		if tt.arg == "ctx" {
			ctx = nilContext
		}
		_, err := tt.sem.Acquire(ctx, tt.weight)
		assertArgumentError(t, err, tt.arg, "Acquire, "+tt.what)
		_, err = tt.sem.TryAcquire(ctx, tt.weight)
		assertArgumentError(t, err, tt.arg, "TryAcquire, "+tt.what)
		err = tt.sem.RunAcquired(ctx, tt.weight, func(context.Context) error { return nil })
		assertArgumentError(t, err, tt.arg, "RunAcquired, "+tt.what)
	}
	assertArgumentError(t, c.rs.NewSemaphore(name, 2).RunAcquired(ctx, 1, nil), "fn", "a nil fn")
	c.assertNothingLeft(t)
}
