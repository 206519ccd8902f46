package mutextest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
)

// The tests of fencing tokens (redsync.WithFencing). Every server in a test
// runs on one machine and so reads one clock, which alone would order most
// tokens; the test of quorums that differ sets a counter far ahead of that
// clock, so that only the counters can order its tokens.

// fenced switches fencing on.
var fenced = redsync.WithFencing(true)

// fenceKey is the key of name's fencing counter, by the rule WithFencing
// documents: "<name>:redsync:fence" when name has a Redis Cluster hash tag
// (a non-empty part between the first "{" and the next "}"), else
// "{<name>}:redsync:fence". It is written out again here so that a change
// of the key, which would strand every counter already on the servers,
// fails a test.
func fenceKey(name string) string {
	if open := strings.IndexByte(name, '{'); open >= 0 {
		if end := strings.IndexByte(name[open+1:], '}'); end > 0 {
			return name + ":redsync:fence"
		}
	}
	return "{" + name + "}:redsync:fence"
}

// counter returns server i's fencing counter of name, 0 when missing.
func (c *testCluster) counter(t *testing.T, i int, name string) uint64 {
	t.Helper()
	v, err := c.inspect[i].Get(context.Background(), fenceKey(name)).Result()
	if err == goredislib.Nil {
		return 0
	}
	require.NoError(t, err, "server %d", i)
	n, err := strconv.ParseUint(v, 10, 64)
	require.NoError(t, err, "server %d holds %q in %s", i, v, fenceKey(name))
	return n
}

// assertTokenStored checks that at least a quorum of all the servers keep
// name's counter at token or above. Only the servers listed are asked, as
// the others may be paused.
func (c *testCluster) assertTokenStored(t *testing.T, name string, token uint64, servers ...int) {
	t.Helper()
	var stored []int
	for _, i := range servers {
		if c.counter(t, i, name) >= token {
			stored = append(stored, i)
		}
	}
	assert.GreaterOrEqual(t, len(stored), len(c.servers)/2+1,
		"token %d is stored on servers %v only, of %v asked", token, stored, servers)
}

// assertIncreasing checks that every token is greater than the one before,
// and none is 0.
func assertIncreasing(t *testing.T, tokens []uint64) {
	t.Helper()
	for i, token := range tokens {
		if token == 0 || (i > 0 && token <= tokens[i-1]) {
			t.Errorf("token #%d (%d) does not exceed the one before; all the tokens, in order: %v", i, token, tokens)
			return
		}
	}
}

// lockUnlock locks m, unlocks it and returns its token.
func lockUnlock(t *testing.T, m *redsync.Mutex) uint64 {
	t.Helper()
	require.NoError(t, m.Lock())
	token := m.Token()
	ok, err := m.Unlock()
	require.True(t, ok, err)
	return token
}

func testFencingTokensGrowInHoldOrder(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, name string) {
		// One worker locks without fencing: it takes turns with the others
		// and gets no token.
		const fencedWorkers, plainWorkers, rounds = 4, 1, 4
		var (
			held   occupancy
			mu     sync.Mutex // guards tokens (the race detector cannot see the distributed lock)
			tokens []uint64   // in the order the lock was held
			wg     sync.WaitGroup
		)
		errs := make(chan error, (fencedWorkers+plainWorkers)*rounds)
		for w := 0; w < fencedWorkers+plainWorkers; w++ {
			opts := []redsync.Option{redsync.WithTries(1000), redsync.WithRetryDelay(time.Millisecond)}
			if w < fencedWorkers {
				opts = append(opts, fenced)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					m := c.rs.NewMutex(name, opts...)
					if err := m.Lock(); err != nil {
						errs <- err
						return
					}
					held.enter()
					if token := m.Token(); token != 0 {
						mu.Lock()
						tokens = append(tokens, token)
						mu.Unlock()
					}
					time.Sleep(200 * time.Microsecond)
					held.leave()
					if ok, err := m.Unlock(); !ok {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		assert.EqualValues(t, 1, held.most, "two holders at once")
		assert.Len(t, tokens, fencedWorkers*rounds, "a token for every fencing holder, none for the other")
		assertIncreasing(t, tokens)
		c.assertNothingLeft(t, name)
	})
}

func testFencingKeepsRedsyncKeyAndExcludesPlainMutexes(t *testing.T, adapters []Adapter) {
	forEachSetup(t, adapters, func(t *testing.T, c *testCluster, base string) {
		all := make([]int, len(c.servers))
		for i := range all {
			all[i] = i
		}
		// Names with and without a hash tag, and with braces that make none:
		// the counter is where fenceKey says on plain servers.
		for _, name := range []string{base, "{" + base + "}:orders", base + ":a}b", base + ":a{b", base + ":{}x"} {
			fencing := c.rs.NewMutex(name, fenced, redsync.WithExpiry(5*time.Second))
			c.lock(t, fencing)
			token := fencing.Token()
			require.NotZero(t, token, name)
			// The key holds the value alone, with the expiry, as in redsync.
			assert.Len(t, fencing.Value(), 24, name)
			assert.Equal(t, repeat(fencing.Value(), len(c.servers)), c.values(t, name))
			for i, client := range c.inspect {
				ttl, err := client.PTTL(context.Background(), name).Result()
				require.NoError(t, err)
				assert.InDelta(t, float64(5*time.Second), float64(ttl), float64(time.Second), "server %d, %s", i, name)
			}
			c.assertTokenStored(t, name, token, all...)

			// A Mutex without fencing is refused by every server...
			plain := c.rs.NewMutex(name, redsync.WithTries(1))
			var taken *redsync.ErrTaken
			require.ErrorAs(t, plain.Lock(), &taken, name)
			assert.Len(t, taken.Nodes, len(c.servers))
			ok, err := fencing.Unlock()
			require.True(t, ok, err)
			c.assertNothingLeft(t, name) // Unlock returns once a quorum answered
			// ... and refuses a fencing one while it holds the lock.
			c.lock(t, plain)
			require.ErrorAs(t, c.rs.NewMutex(name, fenced).TryLock(), &taken, name)
			assert.Len(t, taken.Nodes, len(c.servers))
			c.rs.Wait()
			assert.Equal(t, repeat(plain.Value(), len(c.servers)), c.values(t, name), "the refused attempt left nothing")
			ok, err = plain.Unlock()
			require.True(t, ok, err)
			assert.Zero(t, plain.Token())
			c.assertNothingLeft(t, name)

			// The counter outlives the lock: the next token is larger.
			assert.Greater(t, lockUnlock(t, c.rs.NewMutex(name, fenced)), token, name)
			c.assertNothingLeft(t, name)
		}
	})
}

func testFencingTokensGrowAcrossServersRestartedEmpty(t *testing.T, adapters []Adapter) {
	// One server agrees its tokens alone, in the acquire script; three
	// agree them through the quorum.
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			forEachAdapter(t, adapters, n, func(t *testing.T, c *testCluster, name string) {
				// Restarted servers break the pooled connections: retry soon.
				opts := []redsync.Option{fenced, redsync.WithRetryDelay(10 * time.Millisecond)}
				var tokens []uint64
				lockTwice := func() {
					for i := 0; i < 2; i++ {
						tokens = append(tokens, lockUnlock(t, c.rs.NewMutex(name, opts...)))
					}
				}
				lockTwice()
				// One server at a time forgets the counter, then all of
				// them at once: then only the servers' clocks keep the
				// tokens growing.
				for _, s := range c.servers {
					s.Restart(t)
					lockTwice()
				}
				// Nothing on its way (Lock and Unlock return at quorum):
				// a request retried by the client after the restart,
				// such as a late acquire and the token's write-back that
				// waited for it, would store a counter again.
				c.rs.Wait()
				for _, s := range c.servers {
					s.Kill(t)
				}
				for i, s := range c.servers {
					s.Restart(t)
					assert.Zero(t, c.counter(t, i, name), "server %d restarted with its counter", i)
				}
				lockTwice()
				assertIncreasing(t, tokens)
				c.assertNothingLeft(t, name)
			})
		})
	}
}

func testFencingOrdersHoldersOfDifferentQuorums(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 5, func(t *testing.T, c *testCluster, name string) {
		ctx := context.Background()
		// Servers 0 and 1 have a counter far ahead of the clock: the first
		// holder's token comes from it, and only the counter it writes
		// back to server 2 can tell the second holder, who does not reach
		// servers 0 and 1, to go higher.
		ahead := uint64(time.Now().Add(1000 * time.Hour).UnixMicro())
		for _, i := range []int{0, 1} {
			require.NoError(t, c.inspect[i].Set(ctx, fenceKey(name), ahead, time.Hour).Err())
		}

		// The first holder's quorum is servers 0, 1 and 2.
		for _, i := range []int{3, 4} {
			c.servers[i].Pause(t)
		}
		first := c.rs.NewMutex(name, fenced)
		require.NoError(t, first.Lock())
		assert.Greater(t, first.Token(), ahead, "the token comes from the counter read")
		c.assertTokenStored(t, name, first.Token(), 0, 1, 2)
		ok, err := first.Unlock()
		require.True(t, ok, err)
		// Resumed, servers 3 and 4 run what was queued for them, the
		// token's write-back included. Forget it, as if the partition had
		// lost those requests: server 2 alone links the two quorums.
		for _, i := range []int{3, 4} {
			c.servers[i].Resume(t)
		}
		c.assertNothingLeft(t, name)
		for _, i := range []int{3, 4} {
			require.NoError(t, c.inspect[i].Del(ctx, fenceKey(name)).Err())
		}

		// The second holder's quorum is servers 2, 3 and 4.
		for _, i := range []int{0, 1} {
			c.servers[i].Pause(t)
		}
		second := c.rs.NewMutex(name, fenced)
		require.NoError(t, second.Lock())
		assert.Greater(t, second.Token(), first.Token())
		c.assertTokenStored(t, name, second.Token(), 2, 3, 4)
		ok, err = second.Unlock()
		require.True(t, ok, err)
		for _, i := range []int{0, 1} {
			c.servers[i].Resume(t)
		}
		c.assertNothingLeft(t, name)
	})
}

func testFencingTokenOfAMutex(t *testing.T, adapters []Adapter) {
	forEachAdapter(t, adapters, 3, func(t *testing.T, c *testCluster, name string) {
		ctx := context.Background()
		plain := c.rs.NewMutex(name)
		require.NoError(t, plain.Lock())
		assert.Zero(t, plain.Token(), "no token without fencing")
		// A refused Lock gets no token either.
		refused := c.rs.NewMutex(name, fenced)
		var taken *redsync.ErrTaken
		assert.ErrorAs(t, refused.TryLock(), &taken)
		assert.Zero(t, refused.Token())
		ok, err := plain.Unlock()
		require.True(t, ok, err)

		// A short expiry, that KeepAlive must renew within the test, and a
		// per-server deadline (100 ms) that a busy machine meets.
		m := c.rs.NewMutex(name, fenced, redsync.WithExpiry(400*time.Millisecond), redsync.WithTimeoutFactor(0.25),
			redsync.WithKeepAliveInterval(50*time.Millisecond))
		assert.Zero(t, m.Token(), "no token before the first Lock")
		require.NoError(t, m.TryLock())
		token, value := m.Token(), m.Value()
		require.NotZero(t, token)

		// Extend and KeepAlive keep the lock and its token.
		ok, err = m.Extend()
		require.True(t, ok, err)
		held, err := m.KeepAlive(ctx)
		require.NoError(t, err)
		other := c.rs.NewMutex(name, fenced, redsync.WithTries(1))
		for end := time.Now().Add(700 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			require.ErrorAs(t, other.TryLock(), &taken, "the lock lapsed while kept alive")
			require.NoError(t, held.Err())
		}
		assert.Equal(t, token, m.Token())
		assert.Equal(t, value, m.Value())
		ok, err = m.Unlock()
		require.True(t, ok, err)
		assert.ErrorIs(t, context.Cause(held), redsync.ErrUnlocked)
		assert.Equal(t, token, m.Token(), "the token stays after Unlock")
		c.assertNothingLeft(t, name)

		// Locked again, the same Mutex gets a larger token; a Mutex handed
		// its value has none, and extends and unlocks the lock all the same.
		// (c.lock waits for the acquires still on their way: the heir's
		// release could otherwise overtake one, which would then set m's
		// value again, there until m's expiry.)
		c.lock(t, m)
		again := m.Token()
		assert.Greater(t, again, token)
		heir := c.rs.NewMutex(name, fenced, redsync.WithValue(m.Value()))
		assert.Zero(t, heir.Token(), "WithValue carries no token")
		ok, err = heir.Extend()
		require.True(t, ok, err)
		ok, err = heir.Unlock()
		require.True(t, ok, err)
		assert.Zero(t, heir.Token())
		c.assertNothingLeft(t, name)

		// RunLocked's function sees the token of its acquisition.
		runner := c.rs.NewMutex(name, fenced)
		var seen uint64
		require.NoError(t, runner.RunLocked(ctx, func(context.Context) error {
			seen = runner.Token()
			return nil
		}))
		assert.Greater(t, seen, again)
		assert.Equal(t, seen, runner.Token())
		c.assertNothingLeft(t, name)
	})
}

// FencingOnACluster checks fencing through rs, whose single pool is a
// client of a Redis Cluster: a name with a "}" but no hash tag, whose
// counter cannot share its slot, fails Lock with an *ArgumentError, and a
// name with a hash tag gets growing tokens. For the adapters whose cluster
// client refuses keys of two slots itself (rueidis, valkey-go).
func FencingOnACluster(t *testing.T, rs *redsync.Redsync) {
	t.Helper()
	m := rs.NewMutex("a}b", redsync.WithFencing(true))
	if err := m.Lock(); !errors.Is(err, redsync.ErrInvalidArgument) {
		t.Fatalf("Lock of a name without a hash tag that has a \"}\": %v, want an ArgumentError", err)
	}
	var last uint64
	for i := 0; i < 3; i++ {
		m := rs.NewMutex("{orders}:lock", redsync.WithFencing(true))
		if err := m.Lock(); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if m.Token() <= last {
			t.Fatalf("token %d after %d", m.Token(), last)
		}
		last = m.Token()
		if _, err := m.Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	}
}
