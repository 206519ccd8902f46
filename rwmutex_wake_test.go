package redsync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowRetry is a retry delay that no test waits out: a waiter that gets
// in within its test's context was woken by a release.
func slowRetry() Option { return WithRetryDelay(time.Minute) }

// wakeCtx is the context of a waiter that must be woken: it ends long
// before the retry delay.
func wakeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor runs lock in the background once, and returns its result's
// channel once the waiter of rs queues for name, subscribed everywhere.
func waitFor(t *testing.T, rs *Redsync, name string, lock func() error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- lock() }()
	awaitWaiter(t, rs, name)
	return done
}

// rwLocker is one holder of a name for the wake-up tests: an RWMutex's
// reader ("r") or writer ("w"), or a plain Mutex ("m").
type rwLocker struct {
	lock   func(ctx context.Context) error
	unlock func() (bool, error)
	until  func() time.Time
}

func newRWLocker(rs *Redsync, name, kind string, opts ...Option) rwLocker {
	if kind == "m" {
		m := rs.NewMutex(name, opts...)
		return rwLocker{m.LockContext, m.Unlock, m.Until}
	}
	rw := rs.NewRWMutex(name, opts...)
	if kind == "w" {
		return rwLocker{rw.LockContext, rw.Unlock, rw.Until}
	}
	return rwLocker{rw.RLockContext, rw.RUnlock, rw.Until}
}

func TestRWMutexWaitersAreWokenByReleases(t *testing.T) {
	tests := []struct {
		name          string
		holder, waits string // "r" a reader, "w" a writer, "m" a plain Mutex
	}{
		{"reader behind a writer", "w", "r"},
		{"writer behind a reader", "r", "w"},
		{"writer behind a writer", "w", "w"},
		{"reader behind a Mutex", "m", "r"},
		{"writer behind a Mutex", "m", "w"},
		{"Mutex behind a reader", "r", "m"},
		{"Mutex behind a writer", "w", "m"},
	}
	for _, n := range electionSizes {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("servers=%d/%s", n, tt.name), func(t *testing.T) {
				f := newElectionFleet(t, n)
				name := "rw-wake"
				holderRS, waiterRS := f.process(t).rs, f.process(t).rs
				h := newRWLocker(holderRS, name, tt.holder)
				w := newRWLocker(waiterRS, name, tt.waits, slowRetry(), WithTries(3))
				require.NoError(t, h.lock(context.Background()))
				ctx := wakeCtx(t)
				done := waitFor(t, waiterRS, name, func() error { return w.lock(ctx) })
				_, err := h.unlock()
				require.NoError(t, err)
				require.NoError(t, <-done, "woken by the release, not by the retry delay of a minute")
				assert.True(t, w.until().After(time.Now()))
				_, err = w.unlock()
				require.NoError(t, err)
				holderRS.Wait()
				waiterRS.Wait()
				assert.Zero(t, f.keyCount(t, name))
				assert.Zero(t, f.keyCount(t, rwReadersKey(name)))
			})
		}
	}
}

func TestRWMutexReadersOfAProcessAllEnterAfterAWriter(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-wake-readers"
			writerRS, readersRS := f.process(t).rs, f.process(t).rs
			w := writerRS.NewRWMutex(name)
			require.NoError(t, w.Lock())
			ctx := wakeCtx(t)
			readers := make([]*RWMutex, 3)
			done := make(chan error, len(readers))
			for i := range readers {
				readers[i] = readersRS.NewRWMutex(name, slowRetry(), WithTries(3))
				go func() { done <- readers[i].RLockContext(ctx) }()
			}
			require.Eventually(t, func() bool {
				s := readersRS.handoff.state(name)
				return s.Queued == len(readers) && s.HeadWaiting && s.Listening == s.Listeners
			}, 5*time.Second, time.Millisecond)
			_, err := w.Unlock()
			require.NoError(t, err)
			for range readers {
				require.NoError(t, <-done, "each reader woken in turn")
			}
			for _, r := range readers {
				_, err := r.RUnlock()
				require.NoError(t, err)
			}
			writerRS.Wait()
			readersRS.Wait()
			assert.Zero(t, f.keyCount(t, name))
		})
	}
}

// A reader kept out by a waiting writer's claim is woken when the writer
// gives up: the claim's release is announced too.
func TestRWMutexReaderIsWokenWhenAWaitingWriterGivesUp(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-wake-claim"
			p1, p2, p3 := f.process(t).rs, f.process(t).rs, f.process(t).rs
			r1 := p1.NewRWMutex(name)
			require.NoError(t, r1.RLock())
			writerCtx, cancelWriter := context.WithCancel(context.Background())
			defer cancelWriter()
			writerDone := make(chan error, 1)
			go func() { writerDone <- p2.NewRWMutex(name, slowRetry()).LockContext(writerCtx) }()
			f.awaitWriterClaim(t, name)

			r2 := p3.NewRWMutex(name, slowRetry(), WithTries(3))
			ctx := wakeCtx(t)
			done := waitFor(t, p3, name, func() error { return r2.RLockContext(ctx) })
			cancelWriter()
			assert.ErrorIs(t, <-writerDone, context.Canceled)
			require.NoError(t, <-done, "woken by the claim given up")
			for _, r := range []*RWMutex{r1, r2} {
				_, err := r.RUnlock()
				require.NoError(t, err)
			}
			for _, rs := range []*Redsync{p1, p2, p3} {
				rs.Wait()
			}
			assert.Zero(t, f.keyCount(t, name))
			assert.Zero(t, f.keyCount(t, rwReadersKey(name)))
		})
	}
}
