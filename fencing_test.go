package redsync

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/scripts"
)

// lockUnlock locks m (a Mutex or a MultiMutex), returns its token and
// unlocks it.
func lockUnlock(t *testing.T, m interface {
	Lock() error
	Token() uint64
	Unlock() (bool, error)
}) uint64 {
	t.Helper()
	require.NoError(t, m.Lock())
	token := m.Token()
	ok, err := m.Unlock()
	require.NoError(t, err)
	require.True(t, ok)
	return token
}

func TestFencingTokensGrowAmongGoroutines(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			_, pools := miniPools(t, n)
			rs := New(pools...)
			defer rs.Wait()
			var (
				mu     sync.Mutex
				tokens []uint64
				wg     sync.WaitGroup
			)
			for g := 0; g < 6; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					// (Not WithHandoff(false): miniredis keeps the hand-off
					// placeholder a release leaves for waiters, as it never
					// expires keys in real time.)
					opts := []Option{WithFencing(true), WithRetryDelay(time.Millisecond), WithTries(10000)}
					for i := 0; i < 10; i++ {
						m := rs.NewMutex("counted", opts...)
						if !assert.NoError(t, m.Lock()) {
							return
						}
						mu.Lock()
						tokens = append(tokens, m.Token())
						mu.Unlock()
						_, err := m.Unlock()
						assert.NoError(t, err)
					}
				}(g)
			}
			wg.Wait()
			require.Len(t, tokens, 60)
			for i := 1; i < len(tokens); i++ {
				require.Greater(t, tokens[i], tokens[i-1], "holding %d", i)
			}
		})
	}
}

func TestFencingTokenIsAgreedThroughTheQuorum(t *testing.T) {
	servers, pools := miniPools(t, 5)
	rs := New(pools...)
	defer rs.Wait()
	// Clocks stand still, so only the counters can make tokens grow, and
	// server 0's runs an hour ahead.
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i, s := range servers {
		s.SetTime(t0)
		if i == 0 {
			s.SetTime(t0.Add(time.Hour))
		}
	}
	// The first holder's quorum is {0, 1, 2}: its token comes from server
	// 0's clock.
	servers[3].SetError("ERR down for the test")
	servers[4].SetError("ERR down for the test")
	first := lockUnlock(t, rs.NewMutex("agreed", WithFencing(true)))
	assert.Equal(t, uint64(t0.Add(time.Hour).UnixMicro()), first)
	servers[3].SetError("")
	servers[4].SetError("")
	rs.Wait()

	// The second holder's quorum is {2, 3, 4}: none of them has a clock
	// or a counter of its own that high, but server 2 stored the first
	// token when the first holder wrote it back.
	servers[0].SetError("ERR down for the test")
	servers[1].SetError("ERR down for the test")
	second := lockUnlock(t, rs.NewMutex("agreed", WithFencing(true)))
	assert.Equal(t, first+1, second)
	servers[0].SetError("")
	servers[1].SetError("")
	rs.Wait()

	// Each server's counter holds the highest token written back there.
	want := []uint64{first, first, second, second, second}
	for i, s := range servers {
		got, err := s.Get(fenceKey("agreed"))
		require.NoError(t, err, "server %d", i)
		assert.Equal(t, strconv.FormatUint(want[i], 10), got, "server %d", i)
	}
}

func TestFencingTokensSurviveServersThatLoseTheirData(t *testing.T) {
	servers, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, s := range servers {
		s.SetTime(t0)
	}
	var last uint64
	next := func(what string) {
		t.Helper()
		token := lockUnlock(t, rs.NewMutex("restarted", WithFencing(true)))
		require.Greater(t, token, last, what)
		last = token
	}
	next("first")
	next("clocks standing still, the counters count")
	next("again")

	// A counter lost at once while the clocks stand still is beyond
	// what anything can make up for: a server that lost its data must
	// stay down for the longest expiry, while the clocks move on.
	servers[0].FlushAll()
	for _, s := range servers {
		s.SetTime(t0.Add(8 * time.Second))
	}
	next("one server emptied and restarted after the expiry")

	// Every server restarts empty, after a pause (the Redlock remedy):
	// their clocks moved on, and the clocks are the floor.
	for _, s := range servers {
		s.FlushAll()
		s.SetTime(t0.Add(16 * time.Second))
	}
	next("every server emptied and restarted after the expiry")
}

func TestFencingKeepsRedsyncsKeyAndValue(t *testing.T) {
	servers, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	m := rs.NewMutex("kept", WithFencing(true), WithExpiry(5*time.Second))
	require.NoError(t, m.Lock())
	token := m.Token()
	require.NotZero(t, token)
	rs.Wait() // Lock returns at quorum; the last server may still be busy
	for i, s := range servers {
		got, err := s.Get("kept")
		require.NoError(t, err, "server %d", i)
		assert.Equal(t, m.Value(), got, "server %d: the lock key holds the value alone", i)
		assert.Equal(t, 5*time.Second, s.TTL("kept"), "server %d", i)
		counter, err := s.Get(fenceKey("kept"))
		require.NoError(t, err, "server %d", i)
		assert.Equal(t, strconv.FormatUint(token, 10), counter, "server %d", i)
		assert.Equal(t, fencing.CounterTTL, s.TTL(fenceKey("kept")), "server %d", i)
	}

	// A Mutex without fencing is excluded all the same, and has no token.
	plain := rs.NewMutex("kept", WithTries(1))
	var taken *ErrTaken
	require.ErrorAs(t, plain.Lock(), &taken)
	assert.Zero(t, plain.Token())

	ok, err := m.Extend()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, token, m.Token(), "Extend keeps the token")
	ok, err = m.Unlock()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, token, m.Token(), "the token outlives Unlock, as the value does")
	rs.Wait()
	for i, s := range servers {
		assert.False(t, s.Exists("kept"), "server %d", i)
		assert.True(t, s.Exists(fenceKey("kept")), "server %d: the counter stays", i)
	}

	lockUnlock(t, plain)
	assert.Zero(t, plain.Token(), "no token without fencing")
	assert.Zero(t, rs.NewMutex("kept", WithFencing(true), WithValue("elsewhere")).Token(), "no token with WithValue alone")
}

func TestWithTokenHandsATokenOverWithTheValue(t *testing.T) {
	_, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	first := rs.NewMutex("handed", WithFencing(true))
	require.NoError(t, first.Lock())

	// Another process takes the lock over, value and token.
	taker := rs.NewMutex("handed", WithFencing(true), WithValue(first.Value()), WithToken(first.Token()))
	assert.Equal(t, first.Token(), taker.Token())
	ok, err := taker.Extend()
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = taker.Unlock()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, first.Token(), taker.Token(), "kept after Unlock")

	// Its next acquisition has a token of its own, larger.
	require.NoError(t, taker.Lock())
	assert.Greater(t, taker.Token(), first.Token())
	_, err = taker.Unlock()
	require.NoError(t, err)
}

func TestFencingWriteBackOnlyCountsOnAQuorum(t *testing.T) {
	servers, pools := miniPools(t, 3)
	errWriteBack := errors.New("ERR write-back refused for the test")
	for i := 0; i < 2; i++ {
		pools[i] = fakepool.New(pools[i]).On(fakepool.Eval, fakepool.Before(func(c *fakepool.Call) error {
			if c.Script == scripts.FenceWriteBack {
				return errWriteBack
			}
			return nil
		}))
	}
	rs := New(pools...)
	// One try, without hand-off: nobody listens, so the release deletes
	// the key rather than leave the placeholder for waiters.
	m := rs.NewMutex("unstored", WithFencing(true), WithTries(1), WithHandoff(false))
	err := m.Lock()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTokenNotStored)
	assert.ErrorIs(t, err, errWriteBack)
	assert.Zero(t, m.Token())
	assert.True(t, m.Until().IsZero())
	rs.Wait()
	for i, s := range servers {
		assert.False(t, s.Exists("unstored"), "server %d: a failed Lock leaves nothing", i)
	}
}

func TestFencingCrossSlotIsAnArgumentError(t *testing.T) {
	servers, pools := miniPools(t, 3)
	crossSlot := errors.New("CROSSSLOT Keys in request don't hash to the same slot")
	pools[1] = fakepool.New(pools[1]).On(fakepool.Eval, fakepool.Before(func(c *fakepool.Call) error {
		if c.Script == scripts.FencedAcquire {
			return crossSlot
		}
		return nil
	}))
	rs := New(pools...)
	m := rs.NewMutex("a}b", WithFencing(true))
	start := time.Now()
	err := m.Lock()
	assert.Less(t, time.Since(start), time.Second, "a name that cannot work is not retried")
	require.ErrorIs(t, err, ErrInvalidArgument)
	var arg *ArgumentError
	require.ErrorAs(t, err, &arg)
	assert.Equal(t, "name", arg.Arg)
	assert.Contains(t, err.Error(), "hash tag")
	assert.Contains(t, err.Error(), `"{a}b}:redsync:fence"`)
	rs.Wait()
	for i, s := range servers {
		assert.False(t, s.Exists("a}b"), "server %d: nothing is left locked", i)
	}
}

var _ = miniredis.RunT

func TestObserverSeesTheToken(t *testing.T) {
	_, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	obs := &recorder{}
	m := rs.NewMutex("observed", WithFencing(true), WithObserver(obs))
	require.NoError(t, m.Lock())
	_, err := m.Unlock()
	require.NoError(t, err)
	plain := rs.NewMutex("observed", WithObserver(obs))
	require.NoError(t, plain.Lock())
	_, err = plain.Unlock()
	require.NoError(t, err)

	done := obs.Dones()
	require.Len(t, done, 4)
	assert.Equal(t, OpLock, done[0].Op)
	assert.Equal(t, m.Token(), done[0].Token)
	assert.NotZero(t, done[0].Token)
	for _, e := range done[1:] {
		assert.Zero(t, e.Token, "%v: only a fenced Lock has a token", e.Op)
	}
}
