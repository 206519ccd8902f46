package redsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	redigolib "github.com/gomodule/redigo/redis"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	goredisv7 "github.com/quorumlock/redsync/redis/goredis/v7"
	goredisv8 "github.com/quorumlock/redsync/redis/goredis/v8"
	"github.com/quorumlock/redsync/redis/redigo"
)

// realServers are n real servers, with a go-redis pool for each (which
// listens for releases) and a client to look at them.
type realServers struct {
	pools   []redis.Pool
	inspect []*goredislib.Client
}

func startReal(t *testing.T, n int) *realServers {
	t.Helper()
	c := &realServers{}
	for _, s := range redistest.Start(t, n) {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		c.pools = append(c.pools, goredis.NewPool(client))
		c.inspect = append(c.inspect, s.Client(t))
	}
	return c
}

// values returns what each server holds under key ("" when missing).
func (c *realServers) values(t *testing.T, key string) []string {
	t.Helper()
	out := make([]string, len(c.inspect))
	for i, client := range c.inspect {
		v, err := client.Get(context.Background(), key).Result()
		if err != goredislib.Nil {
			require.NoError(t, err)
		}
		out[i] = v
	}
	return out
}

// newRedsync returns a Redsync over pools that the test waits for.
func newRedsync(t *testing.T, pools ...redis.Pool) *Redsync {
	rs := New(pools...)
	t.Cleanup(rs.Wait)
	return rs
}

// counting wraps every pool of c in a fake pool that counts the calls.
func (c *realServers) counting() []*fakepool.Pool {
	out := make([]*fakepool.Pool, len(c.pools))
	for i, p := range c.pools {
		out[i] = fakepool.New(p, fakepool.WithDoer())
	}
	return out
}

// asPools returns the counting pools, listening as the adapters do.
func asPools(cs []*fakepool.Pool) []redis.Pool {
	out := make([]redis.Pool, len(cs))
	for i, c := range cs {
		out[i] = c.Listening()
	}
	return out
}

func totalGets(cs []*fakepool.Pool) int {
	n := 0
	for _, c := range cs {
		n += c.Calls(fakepool.PoolGet)
	}
	return n
}

// requireArgumentError asserts that err is an *ArgumentError naming arg,
// whose message contains each of says.
func requireArgumentError(t *testing.T, err error, arg string, says ...string) {
	t.Helper()
	require.ErrorIs(t, err, ErrInvalidArgument)
	var argErr *ArgumentError
	require.ErrorAs(t, err, &argErr)
	assert.Equal(t, arg, argErr.Arg, err.Error())
	for _, s := range says {
		assert.Contains(t, err.Error(), s)
	}
}

func TestTheHandoffPlaceholderIsReserved(t *testing.T) {
	assert.True(t, strings.HasPrefix(handoffMarker, reservedValuePrefix),
		"the placeholder %q must begin with the reserved prefix %q, which no lock value may begin with", handoffMarker, reservedValuePrefix)
}

// TestLockValuesThatCannotBeLockValuesAreArgumentErrors: an empty value, or
// one with the prefix the library reserves for the hand-off placeholder,
// from WithGenValueFunc or WithValue, is an *ArgumentError before anything
// is sent. (An empty value locked with "" and could not be unlocked; the
// placeholder as a value let a waiter take over a valid lock.)
func TestLockValuesThatCannotBeLockValuesAreArgumentErrors(t *testing.T) {
	c := startReal(t, 3)
	for _, bad := range []string{"", handoffMarker, "redsync:mine"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			counting := c.counting()
			rs := newRedsync(t, asPools(counting)...)
			name := "bad-value-" + bad
			gen := rs.NewMutex(name, WithGenValueFunc(func() (string, error) { return bad, nil }))
			requireArgumentError(t, gen.Lock(), "WithGenValueFunc", "lock value")
			requireArgumentError(t, gen.TryLock(), "WithGenValueFunc", "lock value")
			assert.Empty(t, gen.Value(), "no value held")

			given := rs.NewMutex(name, WithValue(bad))
			calls := map[string]func() error{
				"Lock":   given.Lock,
				"Unlock": func() error { _, err := given.Unlock(); return err },
				"Extend": func() error { _, err := given.Extend(); return err },
				"Valid":  func() error { _, err := given.Valid(); return err },
				"KeepAlive": func() error {
					_, err := given.KeepAlive(context.Background())
					return err
				},
			}
			for call, fn := range calls {
				err := fn()
				require.Error(t, err, call)
				requireArgumentError(t, err, "WithValue", "lock value")
			}
			assert.Zero(t, totalGets(counting), "nothing is sent")
			assert.Equal(t, []string{"", "", ""}, c.values(t, name))
		})
	}
}

// TestAValueMadeWhileWaitingIsCheckedToo: the value a waiting Lock makes
// for its next try goes through the same check: the attempt fails with an
// *ArgumentError and nobody holds the bad value. (A Lock in the fleet
// queue makes its values, which a release may hand the lock to, through
// the same checked function.)
func TestAValueMadeWhileWaitingIsCheckedToo(t *testing.T) {
	c := startReal(t, 3)
	rs := newRedsync(t, c.pools...)
	const name = "bad-value-while-waiting"
	holder := rs.NewMutex(name)
	require.NoError(t, holder.Lock())

	var made int32
	waiter := rs.NewMutex(name, WithHandoff(false), WithRetryDelay(50*time.Millisecond), WithGenValueFunc(func() (string, error) {
		if atomic.AddInt32(&made, 1) == 1 {
			return "good-value", nil // the first try, refused
		}
		return "redsync:bad-value", nil
	}))
	err := waiter.Lock()
	requireArgumentError(t, err, "WithGenValueFunc", `"redsync:bad-value"`)
	assert.GreaterOrEqual(t, atomic.LoadInt32(&made), int32(2))
	rs.Wait()
	assert.Equal(t, repeat(holder.Value(), 3), c.values(t, name), "the holder keeps its lock")
	ok, err := holder.Unlock()
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestAFencedLockNeverOverwritesWhatIsNotACounter: the key of a name's
// fencing counter may hold something else (here the lock of a Mutex named
// like it, or a hash). A fenced Lock then fails at once with an error that
// names the key, and leaves that key as it was. (The counter write used to
// overwrite the other Mutex's lock with a token, for 24 hours.)
func TestAFencedLockNeverOverwritesWhatIsNotACounter(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d servers", n), func(t *testing.T) {
			c := startReal(t, n)
			rs := newRedsync(t, c.pools...)
			ctx := context.Background()

			occupant := rs.NewMutex(fenceKey("x"))
			require.NoError(t, occupant.Lock())
			rs.Wait() // the occupant is on every server
			fenced := rs.NewMutex("x", WithFencing(true))
			err := fenced.Lock()
			require.ErrorIs(t, err, ErrFenceKeyInUse)
			assert.Contains(t, err.Error(), `"{x}:redsync:fence"`)
			assert.Zero(t, fenced.Token())
			rs.Wait()
			assert.Equal(t, repeat(occupant.Value(), n), c.values(t, fenceKey("x")), "the occupant's lock is left alone")
			assert.Equal(t, repeat("", n), c.values(t, "x"), "nothing is left locked")
			for i, client := range c.inspect {
				ttl, err := client.PTTL(ctx, fenceKey("x")).Result()
				require.NoError(t, err)
				assert.LessOrEqual(t, ttl, 8*time.Second, "server %d: the occupant's expiry", i)
			}
			ok, err := occupant.Unlock()
			require.NoError(t, err)
			require.True(t, ok)
			rs.Wait()
			require.NoError(t, fenced.Lock(), "once the key is free, it is a counter again")
			assert.NotZero(t, fenced.Token())
			_, err = fenced.Unlock()
			require.NoError(t, err)

			// A key of another type.
			for _, client := range c.inspect {
				require.NoError(t, client.HSet(ctx, fenceKey("y"), "field", "v").Err())
			}
			err = rs.NewMutex("y", WithFencing(true)).Lock()
			require.ErrorIs(t, err, ErrFenceKeyInUse)
			assert.Contains(t, err.Error(), `"{y}:redsync:fence"`)
			for i, client := range c.inspect {
				v, err := client.HGet(ctx, fenceKey("y"), "field").Result()
				require.NoError(t, err)
				assert.Equal(t, "v", v, "server %d", i)
			}
		})
	}
}

// TestTheTokenWriteBackNeverOverwritesWhatIsNotACounter: the write-back
// script, run on a key held by this Mutex while the counter key holds
// something else, writes nothing and says so.
func TestTheTokenWriteBackNeverOverwritesWhatIsNotACounter(t *testing.T) {
	c := startReal(t, 3)
	rs := newRedsync(t, c.pools...)
	ctx := context.Background()
	m := rs.NewMutex("z", WithFencing(true))
	for _, other := range []string{"not a counter", "", "12a", "123456789012345678901234"} {
		for _, client := range c.inspect {
			require.NoError(t, client.Set(ctx, "z", "mine", time.Minute).Err())
			require.NoError(t, client.Set(ctx, fenceKey("z"), other, time.Minute).Err())
		}
		res := m.writeBackToken(ctx, "mine", 1795696031978940, newHolding("mine", 0))
		assert.Zero(t, res.n, "%q: stored", other)
		assert.ErrorIs(t, res.err, ErrFenceKeyInUse, other)
		rs.Wait()
		assert.Equal(t, repeat(other, 3), c.values(t, fenceKey("z")), "%q: overwritten", other)
	}
	// A counter is raised as before.
	for _, client := range c.inspect {
		require.NoError(t, client.Set(ctx, fenceKey("z"), "41", time.Minute).Err())
	}
	res := m.writeBackToken(ctx, "mine", 1795696031978940, newHolding("mine", 0))
	assert.GreaterOrEqual(t, res.n, m.nodes.quorum, res.err)
	rs.Wait()
	assert.Equal(t, repeat("1795696031978940", 3), c.values(t, fenceKey("z")))
}

// uncomparablePool is a Pool that == cannot compare (it panics).
type uncomparablePool struct {
	redis.Pool
	tags []string
}

// TestBadPoolsAreArgumentErrors: a nil client given to an adapter, a nil
// pointer as a Pool, or one Pool given twice (which counted one server as
// two) is an *ArgumentError of the first operation, naming the pools;
// nothing is sent. (A nil client crashed the process on a library
// goroutine at the first Lock.)
func TestBadPoolsAreArgumentErrors(t *testing.T) {
	c := startReal(t, 3)
	a, b := c.pools[0], c.pools[1]
	tests := []struct {
		desc  string
		pools []redis.Pool
		says  string
	}{
		{"go-redis v9 adapter without a client", []redis.Pool{a, b, goredis.NewPool(nil)}, "pool #2"},
		{"go-redis v9 adapter with a nil *Client", []redis.Pool{a, goredis.NewPool((*goredislib.Client)(nil)), b}, "pool #1"},
		{"go-redis v8 adapter without a client", []redis.Pool{a, b, goredisv8.NewPool(nil)}, "pool #2"},
		{"go-redis v7 adapter without a client", []redis.Pool{a, b, goredisv7.NewPool(nil)}, "pool #2"},
		{"redigo adapter without a pool", []redis.Pool{redigo.NewPool(nil), a, b}, "pool #0"},
		{"redigo adapter with a nil *Pool", []redis.Pool{a, b, redigo.NewPool((*redigolib.Pool)(nil))}, "pool #2"},
		{"nil pointer as a Pool", []redis.Pool{a, b, (*fakepool.Pool)(nil)}, "*fakepool.Pool"},
		{"the same pool twice", []redis.Pool{a, a}, "pools #0 and #1"},
		{"the same pool twice among three", []redis.Pool{a, b, a}, "pools #0 and #2"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			rs := newRedsync(t, tt.pools...)
			m := rs.NewMutex("bad-pools")
			requireArgumentError(t, m.Lock(), "pools", tt.says)
			_, err := m.Unlock()
			requireArgumentError(t, err, "pools", tt.says)
			_, err = rs.NewMutex("bad-pools", WithValue("v")).KeepAlive(context.Background())
			requireArgumentError(t, err, "pools", tt.says)
			assert.Equal(t, []string{"", "", ""}, c.values(t, "bad-pools"))
		})
	}

	t.Run("pools that == cannot compare", func(t *testing.T) {
		pools := make([]redis.Pool, len(c.pools))
		for i, p := range c.pools {
			pools[i] = uncomparablePool{Pool: p, tags: []string{"x"}}
		}
		rs := newRedsync(t, pools...)
		m := rs.NewMutex("uncomparable")
		require.NoError(t, m.Lock())
		ok, err := m.Unlock()
		require.NoError(t, err)
		assert.True(t, ok)
	})
}

// panicPool returns a pool over inner whose Pool.Get, Conn.SetNX,
// Conn.Eval and Conn.Close panic when when selects them (Close after it
// closed the connection). The panics are raised here, so that their stack
// shows this file.
func panicPool(inner redis.Pool, when func(call string) bool) *fakepool.Pool {
	p := fakepool.New(inner)
	p.On(fakepool.PoolGet, fakepool.Before(func(*fakepool.Call) error {
		if when("Get") {
			panic("pool bug in Get")
		}
		return nil
	}))
	p.On(fakepool.SetNX, fakepool.Before(func(*fakepool.Call) error {
		if when("SetNX") {
			panic("pool bug in SetNX")
		}
		return nil
	}))
	p.On(fakepool.Eval, fakepool.Before(func(*fakepool.Call) error {
		if when("Eval") {
			panic(fmt.Errorf("pool bug in Eval"))
		}
		return nil
	}))
	p.On(fakepool.Close, func(_ *fakepool.Call, send fakepool.Send) (any, error) {
		reply, err := send()
		if when("Close") {
			panic("pool bug in Close")
		}
		return reply, err
	})
	return p
}

func always(string) bool { return true }

func only(calls ...string) func(string) bool {
	return func(call string) bool {
		for _, c := range calls {
			if c == call {
				return true
			}
		}
		return false
	}
}

// panicOf returns the *PanicError in err.
func panicOf(t *testing.T, err error) *PanicError {
	t.Helper()
	var redisErr *RedisError
	require.ErrorAs(t, err, &redisErr, "a panic is that server's error")
	var p *PanicError
	require.ErrorAs(t, redisErr, &p)
	assert.NotEmpty(t, p.Stack)
	assert.Contains(t, string(p.Stack), "harden_test.go", "the stack of the panic")
	return p
}

// TestAPanicInAPoolIsThatServersError: a Pool whose calls panic, on the
// goroutines that send requests, release in the background or keep the
// lock alive, fails that server's request with a *RedisError holding the
// panic's value and stack; the process does not crash, and what every
// other server holds is released as usual.
func TestAPanicInAPoolIsThatServersError(t *testing.T) {
	c := startReal(t, 3)

	t.Run("two servers of three panic in every call: Lock fails", func(t *testing.T) {
		pools := []redis.Pool{c.pools[0], panicPool(c.pools[1], always), panicPool(c.pools[2], always)}
		rs := newRedsync(t, pools...)
		m := rs.NewMutex("panic-lock", WithTries(2), WithRetryDelay(time.Millisecond))
		err := m.Lock()
		require.Error(t, err)
		assert.Equal(t, "pool bug in Get", panicOf(t, err).Value)
		rs.Wait() // the releases done, bookkeeping right
		assert.Contains(t, []string{"", handoffMarker}, c.values(t, "panic-lock")[0], "the healthy server was released")
	})

	t.Run("a connection whose Close panics after the command", func(t *testing.T) {
		pools := []redis.Pool{c.pools[0], c.pools[1], panicPool(c.pools[2], only("Close"))}
		rs := newRedsync(t, pools...)
		m := rs.NewMutex("panic-close", WithTries(1))
		require.NoError(t, m.Lock(), "servers 0 and 1 granted")
		rs.Wait()
		assert.Equal(t, repeat(m.Value(), 3), c.values(t, "panic-close"), "server 2 ran the SET before Close panicked")

		ok, err := m.Extend()
		require.True(t, ok, err)
		ok, err = m.Unlock()
		assert.True(t, ok, err)
		rs.Wait()
		assert.Equal(t, repeat("", 3), c.values(t, "panic-close"), "server 2, failed, was released too")
	})

	t.Run("a failed Lock whose releases panic", func(t *testing.T) {
		pools := []redis.Pool{c.pools[0], panicPool(c.pools[1], only("SetNX", "Eval")), panicPool(c.pools[2], only("SetNX", "Eval"))}
		rs := newRedsync(t, pools...)
		err := rs.NewMutex("panic-release", WithTries(1)).Lock()
		assert.Equal(t, "pool bug in SetNX", panicOf(t, err).Value)
		rs.Wait()
		assert.Equal(t, repeat("", 3), c.values(t, "panic-release"))
	})

	t.Run("KeepAlive and Unlock with one server panicking", func(t *testing.T) {
		var broken int32
		pools := []redis.Pool{c.pools[0], c.pools[1], panicPool(c.pools[2], func(string) bool { return atomic.LoadInt32(&broken) == 1 })}
		rs := newRedsync(t, pools...)
		m := rs.NewMutex("panic-keepalive", WithExpiry(300*time.Millisecond), WithTimeoutFactor(0.2))
		require.NoError(t, m.Lock())
		atomic.StoreInt32(&broken, 1)
		held, err := m.KeepAlive(context.Background())
		require.NoError(t, err)
		time.Sleep(400 * time.Millisecond) // extensions, each panicking on server 2
		require.NoError(t, held.Err(), "kept alive on the two healthy servers")
		ok, err := m.Unlock()
		assert.True(t, ok, err)
		assert.ErrorIs(t, context.Cause(held), ErrUnlocked)
		rs.Wait()
	})

	t.Run("the re-assert of a refused server panics", func(t *testing.T) {
		var armed, panics int32
		panicky := panicPool(c.pools[2], func(call string) bool {
			if call == "SetNX" && atomic.LoadInt32(&armed) == 1 {
				atomic.AddInt32(&panics, 1)
				return true
			}
			return false
		})
		pools := []redis.Pool{c.pools[0], c.pools[1], panicky.Listening()}
		rs := newRedsync(t, pools...)
		const name = "panic-reassert"
		// A contender's key on server 2, gone soon: the holder re-asserts
		// its own there, and that SET NX panics.
		require.NoError(t, c.inspect[2].Set(context.Background(), name, "contender", 50*time.Millisecond).Err())
		m := rs.NewMutex(name, WithExpiry(300*time.Millisecond), WithTimeoutFactor(0.2), WithTries(1))
		require.NoError(t, m.Lock())
		atomic.StoreInt32(&armed, 1) // before the contender's key expires
		require.Eventually(t, func() bool { return atomic.LoadInt32(&panics) > 0 }, 5*time.Second, time.Millisecond,
			"the re-assert's SET NX panics")
		ok, err := m.Unlock()
		assert.True(t, ok, err)
		rs.Wait()
		values := c.values(t, name)
		assert.Equal(t, []string{"", ""}, values[:2])
		assert.Contains(t, []string{"", "contender"}, values[2], "never set where its SET NX panicked")
	})

	t.Run("a listener whose subscription panics", func(t *testing.T) {
		pools := make([]redis.Pool, 3)
		for i, p := range c.pools {
			pools[i] = panicSubscriber(p)
		}
		rs := newRedsync(t, pools...)
		holder := rs.NewMutex("panic-listener")
		require.NoError(t, holder.Lock())
		done := make(chan error, 1)
		go func() {
			done <- rs.NewMutex("panic-listener", WithRetryDelay(20*time.Millisecond)).Lock()
		}()
		// The waiter's listeners start, and panic.
		require.Eventually(t, func() bool {
			return rs.handoff.state("panic-listener").Queued > 0
		}, 5*time.Second, time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		_, err := holder.Unlock()
		require.NoError(t, err)
		require.NoError(t, <-done, "the waiter polls instead")
		rs.Wait()
	})
}

// panicSubscriber returns a pool over inner that listens for releases,
// but whose first Subscribe panics, and whose subscriptions panic when the
// server confirms a subscription.
func panicSubscriber(inner redis.Pool) redis.Pool {
	var subscribed atomic.Bool
	p := fakepool.New(inner, fakepool.WithDoer())
	p.On(fakepool.PoolSubscribe, fakepool.Before(func(*fakepool.Call) error {
		if !subscribed.Swap(true) {
			panic("pool bug in Subscribe")
		}
		return nil
	}))
	p.On(fakepool.SubReceive, func(_ *fakepool.Call, send fakepool.Send) (any, error) {
		reply, err := send()
		if ev, _ := reply.(redis.Event); err == nil && ev.Kind == redis.Subscribed {
			panic(errors.New("pool bug in Receive"))
		}
		return reply, err
	})
	return p.Listening()
}

// TestValuesThatCannotWorkAreArgumentErrors: a per-server deadline below
// 1 ms (which no server meets) and a keep-alive interval below 1 ms (which
// sends extensions back to back, moving nothing) are *ArgumentErrors that
// name the option and the smallest value that works; nothing is sent.
func TestValuesThatCannotWorkAreArgumentErrors(t *testing.T) {
	c := startReal(t, 3)
	tests := []struct {
		desc string
		opts []Option
		arg  string
		says []string
	}{
		{"a timeout factor that leaves no deadline", []Option{WithTimeoutFactor(1e-12)}, "WithTimeoutFactor",
			[]string{"per-server deadline", "at least 1ms", "smallest factor is 0.000125"}},
		{"a 1 ms expiry with the default timeout factor", []Option{WithExpiry(time.Millisecond)}, "WithExpiry",
			[]string{"50µs", "at least 1ms", "smallest expiry is 20ms"}},
		{"a 19 ms expiry with the default timeout factor", []Option{WithExpiry(19 * time.Millisecond)}, "WithExpiry",
			[]string{"950µs", "smallest expiry is 20ms"}},
		{"a timeout factor that needs a longer expiry", []Option{WithExpiry(10 * time.Millisecond), WithTimeoutFactor(0.02)}, "WithTimeoutFactor",
			[]string{"200µs", "smallest factor is 0.1"}},
		{"a keep-alive interval of 5 ns", []Option{WithKeepAliveInterval(5)}, "WithKeepAliveInterval",
			[]string{"at least 1ms", "got 5ns"}},
		{"a keep-alive interval of 999 µs", []Option{WithKeepAliveInterval(999 * time.Microsecond)}, "WithKeepAliveInterval",
			[]string{"at least 1ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			counting := c.counting()
			rs := newRedsync(t, asPools(counting)...)
			m := rs.NewMutex("cannot-work", tt.opts...)
			requireArgumentError(t, m.Lock(), tt.arg, tt.says...)
			_, err := rs.NewMutex("cannot-work", append(tt.opts, WithValue("v"))...).KeepAlive(context.Background())
			requireArgumentError(t, err, tt.arg, tt.says...)
			assert.Zero(t, totalGets(counting), "nothing is sent")
		})
	}
	// The smallest values named work.
	rs := newRedsync(t, c.pools...)
	for _, opts := range [][]Option{
		{WithTimeoutFactor(0.000125)},
		{WithExpiry(20 * time.Millisecond)},
		{WithExpiry(10 * time.Millisecond), WithTimeoutFactor(0.1)},
		{WithKeepAliveInterval(time.Millisecond)},
	} {
		m := rs.NewMutex("can-work", opts...)
		assert.NoError(t, m.check(context.Background()))
	}
}

// TestKeepAliveOfAGivenValueExtendsFirst: a Mutex given a held lock's value
// (WithValue) has no validity of its own yet; KeepAlive extends the lock
// first and then keeps it alive past its expiry. (It refused with "its
// validity is already over".) A given value that no server holds is
// refused, and nothing is set.
func TestKeepAliveOfAGivenValueExtendsFirst(t *testing.T) {
	c := startReal(t, 3)
	rs := newRedsync(t, c.pools...)
	const expiry = 300 * time.Millisecond
	opts := []Option{WithExpiry(expiry), WithTimeoutFactor(0.2)}
	holder := rs.NewMutex("given", opts...)
	require.NoError(t, holder.Lock())

	heir := rs.NewMutex("given", append(opts, WithValue(holder.Value()))...)
	before := time.Now()
	held, err := heir.KeepAlive(context.Background())
	require.NoError(t, err)
	assert.True(t, heir.Until().After(before), "the first extension set Until")
	time.Sleep(2 * expiry)
	require.NoError(t, held.Err(), "kept alive past the expiry")
	assert.Equal(t, repeat(holder.Value(), 3), c.values(t, "given"))
	ok, err := heir.Unlock()
	require.NoError(t, err)
	assert.True(t, ok)
	assert.ErrorIs(t, context.Cause(held), ErrUnlocked)
	rs.Wait()
	assert.Equal(t, repeat("", 3), c.values(t, "given"))

	stranger := rs.NewMutex("given", append(opts, WithValue("nobody-holds-this"))...)
	_, err = stranger.KeepAlive(context.Background())
	assert.ErrorIs(t, err, ErrLockLost)
	rs.Wait()
	assert.Equal(t, repeat("", 3), c.values(t, "given"), "a lock that is not held is not taken")
}

// TestAFractionalMillisecondExpiryCountsWholeMilliseconds: the servers set
// the key for whole milliseconds (a fraction is dropped), and Until counts
// from what they were told. (Until counted the full 200.99 ms: another
// client could hold the lock before the first holder's Until.)
func TestAFractionalMillisecondExpiryCountsWholeMilliseconds(t *testing.T) {
	c := startReal(t, 3)
	hooks := make([]redis.Pool, len(c.pools))
	var firstGet atomic.Pointer[time.Time]
	for i, p := range c.pools {
		hooks[i] = fakepool.New(p).On(fakepool.PoolGet, fakepool.Before(func(*fakepool.Call) error {
			now := time.Now()
			firstGet.CompareAndSwap(nil, &now)
			return nil
		}))
	}
	rs := newRedsync(t, hooks...)
	const told = 200 * time.Millisecond
	m := rs.NewMutex("fraction", WithExpiry(told+990*time.Microsecond), WithTimeoutFactor(0.2))
	validity := told - time.Duration(float64(told)*m.cfg.driftFactor)
	require.NoError(t, m.Lock())
	m.mu.Lock()
	until, start := m.held.until, m.held.acquiredAt
	m.mu.Unlock()
	assert.Equal(t, validity, until.Sub(start), "Until counts the whole milliseconds the servers were told")
	rs.Wait()
	for i, client := range c.inspect {
		ttl, err := client.PTTL(context.Background(), "fraction").Result()
		require.NoError(t, err)
		assert.LessOrEqual(t, ttl, told, "server %d", i)
	}

	firstGet.Store(nil)
	ok, err := m.Extend()
	require.True(t, ok, err)
	assert.False(t, m.Until().After(firstGet.Load().Add(validity)), "the extension's Until counts from what the servers were told")
	_, err = m.Unlock()
	require.NoError(t, err)
}
