package redsync

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// awaitWriterClaim waits until a quorum of servers keep a writer's claim
// on name's readers.
func (f *electionFleet) awaitWriterClaim(t *testing.T, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		n := 0
		for _, c := range f.inspect {
			if ok, _ := c.HExists(context.Background(), rwReadersKey(name), "redsync:writer").Result(); ok {
				n++
			}
		}
		return n >= len(f.inspect)/2+1
	}, 5*time.Second, time.Millisecond)
}

func fastRetry() Option { return WithRetryDelay(5 * time.Millisecond) }

func TestRWMutexReadersShareAWaitingWriterStopsNewReaders(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-turns"
			rs := f.process(t).rs
			ctx := context.Background()
			r1, r2, r3 := rs.NewRWMutex(name), rs.NewRWMutex(name, fastRetry()), rs.NewRWMutex(name, fastRetry())
			w := rs.NewRWMutex(name, fastRetry())

			require.NoError(t, r1.RLockContext(ctx))
			require.NoError(t, r2.RLockContext(ctx), "readers share")
			assert.ErrorIs(t, w.TryLockContext(ctx), ErrFailed, "a writer with readers in")

			locked := make(chan error, 1)
			go func() { locked <- w.LockContext(ctx) }()
			f.awaitWriterClaim(t, name)
			assert.ErrorIs(t, r3.TryRLockContext(ctx), ErrFailed, "a new reader while a writer waits")

			ok, err := r1.RUnlockContext(ctx)
			require.True(t, ok)
			require.NoError(t, err)
			ok, err = r2.RUnlockContext(ctx)
			require.True(t, ok)
			require.NoError(t, err)
			require.NoError(t, <-locked)
			assert.True(t, w.Until().After(time.Now()))

			assert.ErrorIs(t, r3.TryRLockContext(ctx), ErrFailed, "a reader while the writer holds")
			assert.ErrorIs(t, rs.NewRWMutex(name).TryLockContext(ctx), ErrFailed, "a second writer")
			ok, err = w.UnlockContext(ctx)
			require.True(t, ok)
			require.NoError(t, err)

			require.NoError(t, r3.RLockContext(ctx), "a reader after the writer")
			_, err = r3.RUnlockContext(ctx)
			require.NoError(t, err)
			rs.Wait() // releases still on their way
			assert.Zero(t, f.keyCount(t, name))
			assert.Zero(t, f.keyCount(t, rwReadersKey(name)))
		})
	}
}

func TestRWMutexNeverAWriterWithAnotherHolder(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-stress"
			var readers, writers atomic.Int32
			var reads, writes atomic.Int32
			var wg sync.WaitGroup
			var all []*Redsync
			for worker := range 4 {
				rs := f.process(t).rs
				all = append(all, rs)
				wg.Go(func() {
					rng := rand.New(rand.NewSource(int64(worker)))
					rw := rs.NewRWMutex(name, fastRetry(), WithTries(1000))
					for range 8 {
						if rng.Intn(3) == 0 {
							if !assert.NoError(t, rw.Lock()) {
								return
							}
							assert.Equal(t, int32(1), writers.Add(1), "two writers")
							assert.Zero(t, readers.Load(), "a writer with readers")
							time.Sleep(2 * time.Millisecond)
							writers.Add(-1)
							writes.Add(1)
							_, err := rw.Unlock()
							assert.NoError(t, err)
						} else {
							if !assert.NoError(t, rw.RLock()) {
								return
							}
							readers.Add(1)
							assert.Zero(t, writers.Load(), "a reader with a writer")
							time.Sleep(2 * time.Millisecond)
							readers.Add(-1)
							reads.Add(1)
							_, err := rw.RUnlock()
							assert.NoError(t, err)
						}
					}
				})
			}
			wg.Wait()
			assert.Equal(t, int32(32), reads.Load()+writes.Load())
			for _, rs := range all {
				rs.Wait()
			}
			assert.Zero(t, f.keyCount(t, name))
		})
	}
}

func TestRWMutexAndAPlainMutexOnTheNameExcludeEachOther(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-plain"
			rs := f.process(t).rs
			ctx := context.Background()
			m := rs.NewMutex(name, WithTries(1))
			rw := rs.NewRWMutex(name)

			require.NoError(t, m.Lock())
			assert.ErrorIs(t, rw.TryRLockContext(ctx), ErrFailed, "a reader while a Mutex holds")
			assert.ErrorIs(t, rw.TryLockContext(ctx), ErrFailed, "a writer while a Mutex holds")
			_, err := m.Unlock()
			require.NoError(t, err)

			require.NoError(t, rw.RLock())
			assert.Error(t, m.Lock(), "a Mutex while a reader holds")
			_, err = rw.RUnlock()
			require.NoError(t, err)

			require.NoError(t, rw.Lock())
			assert.Error(t, m.Lock(), "a Mutex while a writer holds")
			_, err = rw.Unlock()
			require.NoError(t, err)

			require.NoError(t, m.Lock(), "a Mutex once the RWMutex released")
			_, err = m.Unlock()
			require.NoError(t, err)
		})
	}
}

func TestRWMutexCancelledWriterLeavesNothing(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-cancel"
			rs := f.process(t).rs
			r := rs.NewRWMutex(name)
			require.NoError(t, r.RLock())

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rs.NewRWMutex(name, fastRetry()).LockContext(ctx) }()
			f.awaitWriterClaim(t, name)
			cancel()
			err := <-done
			assert.ErrorIs(t, err, ErrFailed)
			assert.ErrorIs(t, err, context.Canceled)

			r2 := rs.NewRWMutex(name, fastRetry())
			require.NoError(t, r2.RLockContext(context.Background()), "the cancelled writer's claim stayed")
			_, err = r.RUnlock()
			require.NoError(t, err)
			_, err = r2.RUnlock()
			require.NoError(t, err)
			rs.Wait() // releases still on their way
			assert.Zero(t, f.keyCount(t, name))
			assert.Zero(t, f.keyCount(t, rwReadersKey(name)))
		})
	}
}

func TestRWMutexBadArguments(t *testing.T) {
	f := newElectionFleet(t, 1)
	rs := f.process(t).rs
	var nilCtx context.Context
	var argErr *ArgumentError
	tests := []struct {
		name string
		err  func() error
		arg  string
	}{
		{"empty name", func() error { return rs.NewRWMutex("").Lock() }, "name"},
		{"WithValue", func() error { return rs.NewRWMutex("n", WithValue("x")).RLock() }, "WithValue"},
		{"nil ctx", func() error { return rs.NewRWMutex("n").RLockContext(nilCtx) }, "ctx"},
		{"nil ctx unlock", func() error { _, err := rs.NewRWMutex("n").UnlockContext(nilCtx); return err }, "ctx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			require.ErrorAs(t, err, &argErr)
			assert.Equal(t, tt.arg, argErr.Arg)
		})
	}
	t.Run("unlock what is not held", func(t *testing.T) {
		rw := rs.NewRWMutex("held")
		_, err := rw.RUnlock()
		assert.ErrorIs(t, err, ErrNotHeld)
		require.NoError(t, rw.RLock())
		_, err = rw.Unlock()
		assert.ErrorIs(t, err, ErrNotHeld, "Unlock of a read lock")
		require.ErrorAs(t, rw.Lock(), &argErr, "locking twice")
		_, err = rw.RUnlock()
		assert.NoError(t, err)
	})
}

// A try that was given up (not the writer whose turn it is, or a reader
// refused) is followed by a try with a value of its own: the release of
// the given-up try, which returns at a quorum, may still reach a server
// after the next try set its key there, and with one value would delete
// it under a holder that counted that server.
func TestRWMutexTriesAfterGivingUpTakeFreshValues(t *testing.T) {
	f := newElectionFleet(t, 3)
	const name = "rw-fresh-values"
	rs := f.process(t).rs
	m := rs.NewMutex(name)
	require.NoError(t, m.Lock())
	defer func() { _, _ = m.Unlock() }()

	for _, write := range []bool{false, true} {
		var values []string
		gen := WithGenValueFunc(func() (string, error) {
			v, err := genValue()
			values = append(values, v)
			return v, err
		})
		rw := rs.NewRWMutex(name, gen, WithTries(3), fastRetry())
		lock := rw.RLockContext
		if write {
			lock = rw.LockContext
		}
		require.ErrorIs(t, lock(context.Background()), ErrFailed, "the Mutex holds the name")
		assert.GreaterOrEqual(t, len(values), 3, "write=%v: a value per attempt, 3 tries or more", write)
		seen := map[string]bool{}
		for _, v := range values {
			assert.False(t, seen[v], "write=%v: value %q used by two tries", write, v)
			seen[v] = true
		}
	}
}
