package primtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
)

// rwRetry is the RWMutex's retry delay in these tests: it waits by
// polling.
var rwRetry = redsync.WithRetryDelay(5 * time.Millisecond)

func rUnlock(t *testing.T, rw *redsync.RWMutex) {
	t.Helper()
	ok, err := rw.RUnlock()
	require.True(t, ok, err)
}

func unlock(t *testing.T, rw *redsync.RWMutex) {
	t.Helper()
	ok, err := rw.Unlock()
	require.True(t, ok, err)
}

func testRWMutexReadersShareAWriterExcludes(t *testing.T, c *cluster) {
	ctx := context.Background()
	name := c.key("rw")
	other := c.process(t)
	// Tries and a retry delay that a TryRLockContext or TryLockContext
	// that waited would show: each makes one try.
	r1, r2, r3 := c.rs.NewRWMutex(name, neverRetry), other.NewRWMutex(name, neverRetry), c.rs.NewRWMutex(name, neverRetry)
	w, w2 := c.rs.NewRWMutex(name, neverRetry), other.NewRWMutex(name, neverRetry)

	require.NoError(t, r1.TryRLockContext(ctx))
	require.NoError(t, r2.TryRLockContext(ctx), "readers of two processes share")
	assert.ErrorIs(t, w.TryLockContext(ctx), redsync.ErrFailed, "a writer while readers hold")
	rUnlock(t, r1)
	assert.ErrorIs(t, w.TryLockContext(ctx), redsync.ErrFailed, "a writer while a reader holds")
	rUnlock(t, r2)
	c.wait() // each RUnlock returns at a quorum, maybe not the same

	require.NoError(t, w.TryLockContext(ctx), "a writer once the readers left")
	assert.True(t, w.Until().After(time.Now()))
	assert.ErrorIs(t, r3.TryRLockContext(ctx), redsync.ErrFailed, "a reader while a writer holds")
	assert.ErrorIs(t, w2.TryLockContext(ctx), redsync.ErrFailed, "two writers")
	unlock(t, w)
	_, err := w.Unlock()
	assert.ErrorIs(t, err, redsync.ErrNotHeld)
	c.wait()

	require.NoError(t, r3.TryRLockContext(ctx), "a reader once the writer left")
	rUnlock(t, r3)
	c.assertNothingLeft(t)
}

func testRWMutexWaitingWriterStopsNewReaders(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := c.key("rw")
	other := c.process(t)
	reader := c.rs.NewRWMutex(name)
	require.NoError(t, reader.RLockContext(ctx))
	// Tries enough that it waits for the reader however long that takes.
	w := other.NewRWMutex(name, rwRetry, redsync.WithTries(1000))
	locked := make(chan error, 1)
	go func() { locked <- w.LockContext(ctx) }()

	// Until the writer claims its turn a new reader enters (and leaves
	// again); from then on it is refused.
	late := c.rs.NewRWMutex(name)
	require.Eventually(t, func() bool {
		if err := late.TryRLockContext(ctx); err != nil {
			return true
		}
		ok, err := late.RUnlockContext(ctx)
		assert.True(t, ok, err)
		return false
	}, 10*time.Second, time.Millisecond, "new readers kept entering while a writer waited")
	select {
	case err := <-locked:
		t.Fatalf("the writer locked while a reader held: %v", err)
	default:
	}

	rUnlock(t, reader)
	require.NoError(t, <-locked, "the writer once the reader left")
	assert.ErrorIs(t, late.TryRLockContext(ctx), redsync.ErrFailed, "a reader while the writer holds")
	unlock(t, w)
	require.NoError(t, late.RLockContext(ctx), "a reader after the writer")
	rUnlock(t, late)
	c.assertNothingLeft(t)
}

func testRWMutexNeverAWriterWithAnotherHolder(t *testing.T, c *cluster) {
	const goroutines, ops = 4, 4
	name := c.key("rw")
	var readers, writers, done atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		rs := c.rs
		if g%2 == 1 {
			rs = c.process(t)
		}
		wg.Go(func() {
			rw := rs.NewRWMutex(name, rwRetry, redsync.WithTries(1000))
			for i := range ops {
				if (g+i)%3 == 0 {
					if !assert.NoError(t, rw.Lock()) {
						return
					}
					assert.Equal(t, int32(1), writers.Add(1), "two writers at once")
					assert.Zero(t, readers.Load(), "a writer with a reader")
					time.Sleep(time.Millisecond)
					writers.Add(-1)
					ok, err := rw.Unlock()
					assert.True(t, ok, err)
				} else {
					if !assert.NoError(t, rw.RLock()) {
						return
					}
					readers.Add(1)
					assert.Zero(t, writers.Load(), "a reader with a writer")
					time.Sleep(time.Millisecond)
					readers.Add(-1)
					ok, err := rw.RUnlock()
					assert.True(t, ok, err)
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(goroutines*ops), done.Load())
	c.assertNothingLeft(t)
}

func testRWMutexAndAMutexOnTheNameExcludeEachOther(t *testing.T, c *cluster) {
	ctx := context.Background()
	name := c.key("rw")
	m := c.process(t).NewMutex(name, redsync.WithTries(1))
	rw := c.rs.NewRWMutex(name)
	var taken *redsync.ErrTaken

	require.NoError(t, m.Lock())
	assert.ErrorIs(t, rw.TryRLockContext(ctx), redsync.ErrFailed, "a reader while a Mutex holds")
	assert.ErrorIs(t, rw.TryLockContext(ctx), redsync.ErrFailed, "a writer while a Mutex holds")
	ok, err := m.Unlock()
	require.True(t, ok, err)
	c.wait() // each release returns at a quorum

	require.NoError(t, rw.TryRLockContext(ctx))
	assert.ErrorAs(t, m.Lock(), &taken, "a Mutex while a reader holds")
	rUnlock(t, rw)
	c.wait()

	require.NoError(t, rw.TryLockContext(ctx))
	assert.ErrorAs(t, m.Lock(), &taken, "a Mutex while a writer holds")
	unlock(t, rw)
	c.wait()

	require.NoError(t, m.Lock(), "a Mutex once the RWMutex released")
	ok, err = m.Unlock()
	require.True(t, ok, err)
	c.assertNothingLeft(t)
}

func testRWMutexBadArgumentsAreArgumentErrors(t *testing.T, c *cluster) {
	ctx := context.Background()
	name := c.key("rw")
	// WithFencing is left out: the RWMutex supports it.
	for _, tt := range []struct {
		what string
		rw   *redsync.RWMutex
		arg  string
	}{
		{"empty name", c.rs.NewRWMutex(""), "name"},
		{"bad option", c.rs.NewRWMutex(name, redsync.WithExpiry(0)), "WithExpiry"},
		{"WithValue", c.rs.NewRWMutex(name, redsync.WithValue("v")), "WithValue"},
	} {
		assertArgumentError(t, tt.rw.RLock(), tt.arg, "RLock, "+tt.what)
		assertArgumentError(t, tt.rw.TryRLockContext(ctx), tt.arg, "TryRLockContext, "+tt.what)
		assertArgumentError(t, tt.rw.Lock(), tt.arg, "Lock, "+tt.what)
		assertArgumentError(t, tt.rw.TryLockContext(ctx), tt.arg, "TryLockContext, "+tt.what)
	}
	rw := c.rs.NewRWMutex(name)
	assertArgumentError(t, rw.RLockContext(nilContext), "ctx", "RLockContext, nil ctx")
	assertArgumentError(t, rw.TryLockContext(nilContext), "ctx", "TryLockContext, nil ctx")
	require.NoError(t, rw.RLock())
	assertArgumentError(t, rw.RLock(), "RWMutex", "RLock, held already")
	assertArgumentError(t, rw.TryLockContext(ctx), "RWMutex", "TryLockContext, held already")
	_, err := rw.Unlock()
	assert.ErrorIs(t, err, redsync.ErrNotHeld, "Unlock of a read lock")
	rUnlock(t, rw)
	c.assertNothingLeft(t)
}

// testRWMutexCancelledWaitsLeaveNothing: a writer waiting for a reader
// (it claims its turn meanwhile) and a reader waiting for a writer,
// cancelled, leave the servers as they were.
func testRWMutexCancelledWaitsLeaveNothing(t *testing.T, c *cluster) {
	name := c.key("rw")
	other := c.process(t)
	for _, holderWrites := range []bool{false, true} {
		holder := c.rs.NewRWMutex(name)
		if holderWrites {
			require.NoError(t, holder.Lock())
		} else {
			require.NoError(t, holder.RLock())
		}
		before := c.snapshot(t)

		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		waiter := other.NewRWMutex(name, rwRetry, redsync.WithTries(1000))
		var err error
		if holderWrites {
			err = waiter.RLockContext(ctx)
		} else {
			err = waiter.LockContext(ctx)
		}
		cancel()
		assert.ErrorIs(t, err, redsync.ErrFailed, "holder writes: %v", holderWrites)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "holder writes: %v", holderWrites)
		assert.Equal(t, before, c.snapshot(t), "the cancelled wait changed the servers (holder writes: %v)", holderWrites)

		if holderWrites {
			unlock(t, holder)
		} else {
			// The writer's claim is gone: a new reader enters.
			reader := other.NewRWMutex(name)
			require.NoError(t, reader.TryRLockContext(context.Background()), "a reader after the cancelled writer")
			rUnlock(t, reader)
			rUnlock(t, holder)
		}
		c.assertNothingLeft(t)
	}
}
