package redsync

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRWMutexFencingTokens: every write gets a token larger than every
// earlier write's (an RWMutex's or a fenced Mutex's on the name, which
// share the counter), also after a server restarted empty, and a reader
// gets the token of the last write before it.
func TestRWMutexFencingTokens(t *testing.T) {
	for _, n := range electionSizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			f := newElectionFleet(t, n)
			const name = "rw-fenced"
			rs := f.process(t).rs
			rw := rs.NewRWMutex(name, WithFencing(true))
			var lastWrite uint64
			write := func(what string) {
				t.Helper()
				require.NoError(t, rw.Lock(), what)
				assert.Greater(t, rw.Token(), lastWrite, what)
				lastWrite = rw.Token()
				_, err := rw.Unlock()
				require.NoError(t, err, what)
			}
			read := func(what string) {
				t.Helper()
				require.NoError(t, rw.RLock(), what)
				assert.Equal(t, lastWrite, rw.Token(), what)
				_, err := rw.RUnlock()
				require.NoError(t, err, what)
			}
			read("before any write: no write to follow")
			write("the first write")
			read("after the first write")
			write("the second write")
			read("after the second write")
			assert.Equal(t, lastWrite, rw.Token(), "the token stays after the unlock")

			m := rs.NewMutex(name, WithFencing(true))
			require.NoError(t, m.Lock())
			assert.Greater(t, m.Token(), lastWrite, "a fenced Mutex on the name after a write")
			lastWrite = m.Token()
			_, err := m.Unlock()
			require.NoError(t, err)
			read("after the Mutex's write")
			write("a write after the Mutex's")

			// A writer that waited for a reader, its turn claimed.
			reader := rs.NewRWMutex(name, WithFencing(true))
			require.NoError(t, reader.RLock())
			locked := make(chan error, 1)
			go func() { locked <- rw.Lock() }()
			f.awaitWriterClaim(t, name)
			_, err = reader.RUnlock()
			require.NoError(t, err)
			require.NoError(t, <-locked)
			assert.Greater(t, rw.Token(), lastWrite, "a write that waited for its turn")
			lastWrite = rw.Token()
			_, err = rw.Unlock()
			require.NoError(t, err)

			rs.Wait()
			f.servers[0].Restart(t)
			write("a write after a server restarted empty")
			read("a read after it")
			rs.Wait()
		})
	}
}

func TestRWMutexFencingRefusesACounterKeyInUse(t *testing.T) {
	f := newElectionFleet(t, 3)
	const name = "rw-fence-in-use"
	rs := f.process(t).rs
	for _, c := range f.inspect {
		require.NoError(t, c.Set(context.Background(), fenceKey(name), "not a counter", 0).Err())
	}
	for _, lock := range []func() error{rs.NewRWMutex(name, WithFencing(true)).RLock, rs.NewRWMutex(name, WithFencing(true)).Lock} {
		assert.ErrorIs(t, lock(), ErrFenceKeyInUse)
	}
	rs.Wait()
	assert.Zero(t, f.keyCount(t, name), "nothing left")
	assert.Zero(t, f.keyCount(t, rwReadersKey(name)))
}
