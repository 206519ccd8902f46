package mutextest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
)

func testKeepAliveHoldsALockForManyExpiries(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		// Five expiries in 3 s, with a per-server deadline (60 ms) that a
		// loaded CI machine keeps.
		m := c.rs.NewMutex(name, redsync.WithExpiry(600*time.Millisecond), redsync.WithTimeoutFactor(0.1))
		c.lock(t, m)
		held, err := m.KeepAlive(context.Background())
		require.NoError(t, err)

		other := c.rs.NewMutex(name, redsync.WithTries(1))
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			var taken *redsync.ErrTaken
			require.ErrorAs(t, other.TryLock(), &taken, "the lock lapsed while kept alive")
			require.NoError(t, held.Err())
		}
		ok, err := m.Unlock()
		require.True(t, ok, err)
		assert.ErrorIs(t, context.Cause(held), redsync.ErrUnlocked)
		require.NoError(t, other.TryLock(), "free at once after Unlock")
		_, _ = other.Unlock()
		c.assertNothingLeft(t, name)
	})
}

func testKeepAliveStopsForGoodAtUnlock(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(time.Second), redsync.WithKeepAliveInterval(20*time.Millisecond))
		c.lock(t, m)
		_, err := m.KeepAlive(context.Background())
		require.NoError(t, err)
		time.Sleep(70 * time.Millisecond)
		ok, err := m.Unlock()
		require.True(t, ok, err)
		// An extension that sets a missing key must not bring it back.
		for i := 0; i < 5; i++ {
			time.Sleep(20 * time.Millisecond)
			c.assertNothingLeft(t, name)
		}
	})
}

// lostAt waits for held to be done and returns when it noticed.
func lostAt(t *testing.T, held context.Context) time.Time {
	t.Helper()
	select {
	case <-held.Done():
		return time.Now()
	case <-time.After(10 * time.Second):
		t.Fatal("the holder's context was never cancelled")
		return time.Time{}
	}
}

func testKeepAliveReportsALostQuorumBeforeUntil(t *testing.T, adapters []Adapter) {
	for _, fault := range []string{"pause", "kill"} {
		t.Run(fault, func(t *testing.T) {
			forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
				m := c.rs.NewMutex(name, redsync.WithExpiry(time.Second), redsync.WithKeepAliveInterval(100*time.Millisecond))
				c.lock(t, m)
				held, err := m.KeepAlive(context.Background())
				require.NoError(t, err)
				time.Sleep(150 * time.Millisecond) // an extension went through
				for _, s := range c.servers[1:] {
					if fault == "pause" {
						s.Pause(t)
					} else {
						s.Kill(t)
					}
				}
				at := lostAt(t, held)
				// No extension succeeded since the fault: Until is where
				// the last one left it, and the holder knew before.
				assert.True(t, at.Before(m.Until()), "cancelled at %v, after Until %v", at, m.Until())
				assert.ErrorIs(t, context.Cause(held), redsync.ErrLockLost)
				if fault == "pause" {
					for _, s := range c.servers[1:] {
						s.Resume(t)
					}
				}
				_, _ = m.Unlock()
				if fault == "pause" {
					c.assertNothingLeft(t, name)
				}
			})
		})
	}
}

func testKeepAliveReportsAnotherHolder(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(time.Second), redsync.WithKeepAliveInterval(30*time.Millisecond))
		c.lock(t, m)
		held, err := m.KeepAlive(context.Background())
		require.NoError(t, err)
		// As if the key had expired and somebody else had taken it.
		for _, client := range c.inspect {
			require.NoError(t, client.Set(context.Background(), name, "somebody else", time.Second).Err())
		}
		lostAt(t, held)
		assert.ErrorIs(t, context.Cause(held), redsync.ErrLockLost)
		assert.Contains(t, context.Cause(held).Error(), "another value")
		ok, _ := m.Unlock()
		assert.False(t, ok)
		assert.Equal(t, repeat("somebody else", 3), c.values(t, name), "Unlock leaves the other holder alone")
		for _, client := range c.inspect {
			require.NoError(t, client.Del(context.Background(), name).Err())
		}
	})
}

func testKeepAliveRestoresTheKeyOnARestartedServer(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name, redsync.WithExpiry(2*time.Second), redsync.WithKeepAliveInterval(50*time.Millisecond))
		c.lock(t, m)
		held, err := m.KeepAlive(context.Background())
		require.NoError(t, err)
		c.servers[1].Restart(t) // empty: it forgot the key
		assert.Eventually(t, func() bool {
			return c.values(t, name)[1] == m.Value()
		}, 3*time.Second, 10*time.Millisecond, "the next extension sets the key again")
		require.NoError(t, held.Err())
		ok, err := m.Unlock()
		require.True(t, ok, err)
		c.assertNothingLeft(t, name)
	})
}

func testKeepAliveFollowsTheCallersContext(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 1, func(t *testing.T, c *testCluster, name string) {
		m := c.rs.NewMutex(name)
		_, err := m.KeepAlive(context.Background())
		assert.ErrorIs(t, err, redsync.ErrNotHeld)

		c.lock(t, m)
		ctx, cancel := context.WithCancel(context.Background())
		held, err := m.KeepAlive(ctx)
		require.NoError(t, err)
		again, err := m.KeepAlive(ctx)
		require.NoError(t, err)
		assert.Equal(t, held, again, "one keeper per lock")
		cancel()
		<-held.Done()
		assert.ErrorIs(t, context.Cause(held), context.Canceled)
		ok, err := m.Unlock()
		require.True(t, ok, err)
	})
}

func testRunLockedAlwaysReleases(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		ctx := context.Background()
		boom := errors.New("boom")
		var sawLock bool
		err := c.rs.RunLocked(ctx, name, func(ctx context.Context) error {
			held := 0
			for _, v := range c.values(t, name) {
				if v != "" {
					held++
				}
			}
			sawLock = held >= 2 // a quorum of the 3 servers
			return boom
		}, redsync.WithExpiry(time.Second))
		assert.True(t, sawLock)
		assert.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, redsync.ErrLockLost)
		c.assertNothingLeft(t, name)

		assert.PanicsWithValue(t, "kaboom", func() {
			_ = c.rs.RunLocked(ctx, name, func(context.Context) error { panic("kaboom") })
		})
		c.assertNothingLeft(t, name)

		cancelled, cancel := context.WithCancel(ctx)
		err = c.rs.RunLocked(cancelled, name, func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		assert.ErrorIs(t, err, context.Canceled)
		c.assertNothingLeft(t, name)

		// Lock fails: fn does not run.
		holder := c.rs.NewMutex(name)
		c.lock(t, holder)
		ran := false
		err = c.rs.RunLocked(ctx, name, func(context.Context) error { ran = true; return nil }, redsync.WithTries(1))
		var taken *redsync.ErrTaken
		assert.ErrorAs(t, err, &taken)
		assert.False(t, ran)
		_, _ = holder.Unlock()

		// The lock is lost while fn runs: fn's context says so.
		err = c.rs.RunLocked(ctx, name, func(ctx context.Context) error {
			for _, client := range c.inspect {
				require.NoError(t, client.Set(context.Background(), name, "somebody else", time.Second).Err())
			}
			<-ctx.Done()
			return context.Cause(ctx)
		}, redsync.WithExpiry(time.Second), redsync.WithKeepAliveInterval(20*time.Millisecond))
		assert.ErrorIs(t, err, redsync.ErrLockLost)
		for _, client := range c.inspect {
			require.NoError(t, client.Del(context.Background(), name).Err())
		}
	})
}
