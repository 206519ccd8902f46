package redsync

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRWMutexExtendsAndValidatesBothLocks(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-extend"
			rs := f.process(t).rs
			rw := rs.NewRWMutex(name, WithExpiry(4*time.Second))
			other := rs.NewRWMutex(name)

			ok, err := rw.ValidContext(context.Background())
			assert.False(t, ok)
			assert.ErrorIs(t, err, ErrNotHeld, "Valid before a lock")

			require.NoError(t, rw.RLock())
			require.NoError(t, other.RLock())
			before := rw.Until()
			time.Sleep(10 * time.Millisecond)
			_, err = rw.Extend()
			assert.ErrorIs(t, err, ErrNotHeld, "Extend of a read lock")
			ok, err = rw.RExtend()
			require.NoError(t, err)
			require.True(t, ok)
			assert.True(t, rw.Until().After(before), "Until moves on")
			ok, err = rw.Valid()
			require.NoError(t, err)
			assert.True(t, ok)
			// The entry and the mark were extended together: the mark
			// outlives the entry on every server.
			for i, c := range f.inspect {
				mark, err := c.PTTL(context.Background(), name).Result()
				require.NoError(t, err)
				assert.Greater(t, mark, 3*time.Second, "server %d: the mark's expiry", i)
			}
			_, err = other.RUnlock()
			require.NoError(t, err)
			_, err = rw.RUnlock()
			require.NoError(t, err)
			ok, err = rw.RExtend()
			assert.False(t, ok)
			assert.ErrorIs(t, err, ErrNotHeld, "RExtend after RUnlock")

			require.NoError(t, rw.Lock())
			_, err = rw.RExtend()
			assert.ErrorIs(t, err, ErrNotHeld, "RExtend of the write lock")
			before = rw.Until()
			time.Sleep(10 * time.Millisecond)
			ok, err = rw.Extend()
			require.NoError(t, err)
			require.True(t, ok)
			assert.True(t, rw.Until().After(before))
			ok, err = rw.Valid()
			require.NoError(t, err)
			assert.True(t, ok)
			_, err = rw.Unlock()
			require.NoError(t, err)
			rs.Wait()
			assert.Zero(t, f.keyCount(t, name))
		})
	}
}

func TestRWMutexExtendOfALostReadLockFails(t *testing.T) {
	f := newElectionFleet(t, 3)
	const name = "rw-extend-lost"
	rs := f.process(t).rs
	rw := rs.NewRWMutex(name)
	require.NoError(t, rw.RLock())
	rs.Wait()
	for _, c := range f.inspect {
		require.NoError(t, c.Del(context.Background(), rwReadersKey(name)).Err())
	}
	ok, err := rw.RExtend()
	assert.False(t, ok)
	assert.Error(t, err)
	ok, _ = rw.Valid()
	assert.False(t, ok, "an entry gone is not valid")
	for _, c := range f.inspect {
		assert.Zero(t, c.Exists(context.Background(), rwReadersKey(name)).Val(), "an extension sets no entry that is gone")
	}
	_, _ = rw.RUnlock()
}

func TestRWMutexKeepAliveKeepsBothLocksPastTheirExpiry(t *testing.T) {
	for _, n := range electionSizes {
		for _, write := range []bool{false, true} {
			t.Run(fmt.Sprintf("servers=%d/write=%v", n, write), func(t *testing.T) {
				f := newElectionFleet(t, n)
				const name = "rw-keepalive"
				rs := f.process(t).rs
				// A per-server deadline (a quarter of the expiry) that a
				// healthy server meets on a loaded machine.
				const expiry = 2 * time.Second
				rw := rs.NewRWMutex(name, WithExpiry(expiry), WithTimeoutFactor(0.25))
				lock, unlock := rw.RLock, rw.RUnlock
				if write {
					lock, unlock = rw.Lock, rw.Unlock
				}
				require.NoError(t, lock())
				held, err := rw.KeepAlive(context.Background())
				require.NoError(t, err)
				again, err := rw.KeepAlive(context.Background())
				require.NoError(t, err)
				assert.Equal(t, held, again, "KeepAlive twice")
				time.Sleep(expiry + expiry/4)
				require.NoError(t, held.Err(), "kept alive: %v", context.Cause(held))
				ok, err := rw.Valid()
				require.NoError(t, err)
				assert.True(t, ok)
				_, err = unlock()
				require.NoError(t, err)
				<-held.Done()
				assert.ErrorIs(t, context.Cause(held), ErrUnlocked)
				rs.Wait()
				assert.Zero(t, f.keyCount(t, name))
			})
		}
	}
}

func TestRWMutexKeepAliveCancelsWhenTheLockIsTaken(t *testing.T) {
	for _, write := range []bool{false, true} {
		t.Run(fmt.Sprintf("write=%v", write), func(t *testing.T) {
			f := newElectionFleet(t, 3)
			const name = "rw-keepalive-lost"
			rs := f.process(t).rs
			rw := rs.NewRWMutex(name, WithKeepAliveInterval(20*time.Millisecond))
			lock := rw.RLock
			if write {
				lock = rw.Lock
			}
			require.NoError(t, lock())
			rs.Wait()
			held, err := rw.KeepAlive(context.Background())
			require.NoError(t, err)
			for _, c := range f.inspect {
				require.NoError(t, c.Set(context.Background(), name, "somebody else", 0).Err())
			}
			<-held.Done()
			assert.ErrorIs(t, context.Cause(held), ErrLockLost)
			if write {
				_, _ = rw.Unlock()
			} else {
				_, _ = rw.RUnlock()
			}
		})
	}
}

func TestRWMutexRunLockedAlwaysReleases(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-run"
			rs := f.process(t).rs
			rw := rs.NewRWMutex(name)
			errWork := errors.New("work failed")
			err := rw.RunRLocked(context.Background(), func(ctx context.Context) error {
				require.NoError(t, ctx.Err())
				reader := rs.NewRWMutex(name)
				assert.NoError(t, reader.TryRLock(), "another reader while RunRLocked runs")
				_, err := reader.RUnlock()
				assert.NoError(t, err)
				assert.ErrorIs(t, rs.NewRWMutex(name).TryLock(), ErrFailed, "a writer while RunRLocked runs")
				return errWork
			})
			assert.ErrorIs(t, err, errWork)
			assert.Zero(t, rw.Until(), "released")

			assert.Panics(t, func() {
				_ = rw.RunLocked(context.Background(), func(ctx context.Context) error {
					assert.ErrorIs(t, rs.NewRWMutex(name).TryRLock(), ErrFailed, "a reader while RunLocked runs")
					panic("work panicked")
				})
			})
			assert.Zero(t, rw.Until(), "released after a panic")
			var argErr *ArgumentError
			assert.ErrorAs(t, rw.RunLocked(context.Background(), nil), &argErr)
			rs.Wait()
			assert.Zero(t, f.keyCount(t, name))
			assert.Zero(t, f.keyCount(t, rwReadersKey(name)))
		})
	}
}
