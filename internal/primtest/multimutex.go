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

func testMultiMutexLocksAllNamesOrNone(t *testing.T, c *cluster) {
	a, b, d := c.key("a"), c.key("b"), c.key("d")
	n := len(c.servers)
	holder := c.rs.NewMutex(b)
	require.NoError(t, holder.Lock())

	// Tries and a retry delay that a TryLock that waited would show: it
	// makes one try.
	mm := c.process(t).NewMultiMutex([]string{a, b, d}, neverRetry, redsync.WithTries(1000))
	err := mm.TryLock()
	require.ErrorIs(t, err, redsync.ErrFailed, "the MultiMutex locked a name a Mutex holds")
	var taken *redsync.ErrTaken
	assert.ErrorAs(t, err, &taken)
	assert.Empty(t, mm.Value())
	c.wait()
	assert.Equal(t, repeat("", n), c.values(t, a), "a refused MultiMutex set a name")
	assert.Equal(t, repeat(holder.Value(), n), c.values(t, b))
	assert.Equal(t, repeat("", n), c.values(t, d), "a refused MultiMutex set a name")
	ok, err := holder.Unlock()
	require.True(t, ok, err)
	c.wait() // Unlock returns at a quorum

	require.NoError(t, mm.TryLock())
	c.wait()
	for _, name := range []string{a, b, d} {
		assert.Equal(t, repeat(mm.Value(), n), c.values(t, name), "every name on every server")
	}
	valid, err := mm.Valid()
	assert.True(t, valid, err)
	ok, err = mm.Unlock()
	require.True(t, ok, err)
	_, err = mm.Unlock()
	assert.ErrorIs(t, err, redsync.ErrNotHeld)
	c.assertNothingLeft(t)
}

func testMultiMutexCallersListingNamesInOppositeOrdersBothFinish(t *testing.T, c *cluster) {
	const rounds = 5
	a, b := c.key("a"), c.key("b")
	var inside atomic.Int32
	var wg sync.WaitGroup
	for _, p := range []struct {
		rs    *redsync.Redsync
		names []string
	}{{c.rs, []string{a, b}}, {c.process(t), []string{b, a}}} {
		wg.Go(func() {
			for range rounds {
				mm := p.rs.NewMultiMutex(p.names, fastRetry, redsync.WithTries(1000))
				if !assert.NoError(t, mm.Lock()) {
					return
				}
				assert.Equal(t, int32(1), inside.Add(1), "two holders of a name at once")
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				ok, err := mm.Unlock()
				assert.True(t, ok, err)
			}
		})
	}
	wg.Wait()
	c.assertNothingLeft(t)
}

func testMultiMutexAndAMutexOnOneNameExcludeEachOther(t *testing.T, c *cluster) {
	x, y := c.key("x"), c.key("y")
	mm := c.rs.NewMultiMutex([]string{x, y})
	require.NoError(t, mm.Lock())

	m := c.process(t).NewMutex(y)
	var taken *redsync.ErrTaken
	assert.ErrorAs(t, m.TryLock(), &taken, "a Mutex locked a name of a held MultiMutex")
	ok, err := mm.Unlock()
	require.True(t, ok, err)
	c.wait()

	require.NoError(t, m.TryLock(), "the Mutex once the MultiMutex released")
	assert.ErrorIs(t, mm.TryLock(), redsync.ErrFailed, "the MultiMutex while a Mutex holds one of its names")
	ok, err = m.Unlock()
	require.True(t, ok, err)
	c.assertNothingLeft(t)
}

// testMultiMutexFailedLockLeavesNothing: the servers other than a
// quorum let the MultiMutex set every name (a quorum holds another value
// under one of them), and it gives them back.
func testMultiMutexFailedLockLeavesNothing(t *testing.T, c *cluster) {
	free, held := c.key("free"), c.key("held")
	n := len(c.servers)
	quorum := n/2 + 1
	want := repeat("", n)
	for i := n - quorum; i < n; i++ {
		require.NoError(t, c.inspect[i].Set(context.Background(), held, "foreign", 0).Err())
		want[i] = "foreign"
	}

	// Tries enough that the deadline ends the wait.
	mm := c.rs.NewMultiMutex([]string{free, held}, fastRetry, redsync.WithTries(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := mm.LockContext(ctx)
	assert.ErrorIs(t, err, redsync.ErrFailed)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	c.wait()
	assert.Equal(t, repeat("", n), c.values(t, free), "a failed MultiMutex left a name set")
	assert.Equal(t, want, c.values(t, held))

	for _, client := range c.inspect {
		require.NoError(t, client.Del(context.Background(), held).Err())
	}
	c.assertNothingLeft(t)
}

func testMultiMutexBadArgumentsAreArgumentErrors(t *testing.T, c *cluster) {
	ctx := context.Background()
	a, b := c.key("a"), c.key("b")
	// WithFencing is left out: the MultiMutex supports it.
	for _, tt := range []struct {
		what string
		mm   *redsync.MultiMutex
		arg  string
	}{
		{"no names", c.rs.NewMultiMutex(nil), "names"},
		{"an empty name", c.rs.NewMultiMutex([]string{a, ""}), "names"},
		{"a name twice", c.rs.NewMultiMutex([]string{a, b, a}), "names"},
		{"bad option", c.rs.NewMultiMutex([]string{a, b}, redsync.WithTries(0)), "WithTries"},
		{"WithValue", c.rs.NewMultiMutex([]string{a, b}, redsync.WithValue("v")), "WithValue"},
		{"WithSetNXOnExtend", c.rs.NewMultiMutex([]string{a, b}, redsync.WithSetNXOnExtend()), "WithSetNXOnExtend"},
	} {
		assertArgumentError(t, tt.mm.Lock(), tt.arg, "Lock, "+tt.what)
		assertArgumentError(t, tt.mm.TryLock(), tt.arg, "TryLock, "+tt.what)
		assertArgumentError(t, tt.mm.RunLocked(ctx, func(context.Context) error { return nil }), tt.arg, "RunLocked, "+tt.what)
	}
	mm := c.rs.NewMultiMutex([]string{a, b})
	assertArgumentError(t, mm.LockContext(nilContext), "ctx", "LockContext, nil ctx")
	assertArgumentError(t, mm.TryLockContext(nilContext), "ctx", "TryLockContext, nil ctx")
	assertArgumentError(t, mm.RunLocked(ctx, nil), "fn", "RunLocked, nil fn")
	require.NoError(t, mm.Lock())
	assertArgumentError(t, mm.Lock(), "MultiMutex", "Lock, held already")
	assertArgumentError(t, mm.TryLock(), "MultiMutex", "TryLock, held already")
	ok, err := mm.Unlock()
	require.True(t, ok, err)
	c.assertNothingLeft(t)
}

// testMultiMutexCancelledLockLeavesNothing: a Lock waiting behind a
// holder of one of its names, cancelled, leaves the servers as they were.
func testMultiMutexCancelledLockLeavesNothing(t *testing.T, c *cluster) {
	a, b, d := c.key("a"), c.key("b"), c.key("d")
	holder := c.rs.NewMultiMutex([]string{a, b})
	require.NoError(t, holder.Lock())
	before := c.snapshot(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.process(t).NewMultiMutex([]string{d, b}, fastRetry, redsync.WithTries(1000)).LockContext(ctx)
	assert.ErrorIs(t, err, redsync.ErrFailed)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, before, c.snapshot(t), "the cancelled Lock changed the servers")

	ok, err := holder.Unlock()
	require.True(t, ok, err)
	c.assertNothingLeft(t)
}
