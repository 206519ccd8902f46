package redsync

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the tests kill servers on purpose.
	goredislib.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m,
		// go-redis keeps probing a server it failed to dial for a second
		// after its client is closed.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

// miniPools starts n embedded miniredis servers and returns a go-redis pool
// for each, closed when the test ends.
func miniPools(t *testing.T, n int) ([]*miniredis.Miniredis, []redis.Pool) {
	t.Helper()
	servers := make([]*miniredis.Miniredis, n)
	pools := make([]redis.Pool, n)
	for i := range servers {
		servers[i] = miniredis.RunT(t)
		client := goredislib.NewClient(&goredislib.Options{Addr: servers[i].Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	return servers, pools
}

func TestBadArgumentsAreReportedBeforeAnyServerIsContacted(t *testing.T) {
	servers, pools := miniPools(t, 1)
	tests := []struct {
		desc  string
		pools []redis.Pool
		name  string
		opts  []Option
		arg   string
	}{
		{"no pools", nil, "lock", nil, "pools"},
		{"nil pool", []redis.Pool{pools[0], nil}, "lock", nil, "pools"},
		{"empty name", pools, "", nil, "name"},
		{"zero expiry", pools, "lock", []Option{WithExpiry(0)}, "WithExpiry"},
		{"negative expiry", pools, "lock", []Option{WithExpiry(-time.Second)}, "WithExpiry"},
		{"expiry under a millisecond", pools, "lock", []Option{WithExpiry(time.Microsecond)}, "WithExpiry"},
		{"zero tries", pools, "lock", []Option{WithTries(0)}, "WithTries"},
		{"nil delay func", pools, "lock", []Option{WithRetryDelayFunc(nil)}, "WithRetryDelayFunc"},
		{"nil value func", pools, "lock", []Option{WithGenValueFunc(nil)}, "WithGenValueFunc"},
		{"negative drift", pools, "lock", []Option{WithDriftFactor(-0.1)}, "WithDriftFactor"},
		{"drift of one", pools, "lock", []Option{WithDriftFactor(1)}, "WithDriftFactor"},
		{"NaN drift", pools, "lock", []Option{WithDriftFactor(math.NaN())}, "WithDriftFactor"},
		{"zero timeout factor", pools, "lock", []Option{WithTimeoutFactor(0)}, "WithTimeoutFactor"},
		{"timeout factor of one", pools, "lock", []Option{WithTimeoutFactor(1)}, "WithTimeoutFactor"},
		{"zero keep-alive interval", pools, "lock", []Option{WithKeepAliveInterval(0)}, "WithKeepAliveInterval"},
		{"keep-alive interval of the expiry", pools, "lock", []Option{WithExpiry(time.Second), WithKeepAliveInterval(time.Second)}, "WithKeepAliveInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := New(tt.pools...).NewMutex(tt.name, append(tt.opts, WithValue("v"))...)
			calls := map[string]func() error{
				"Lock":    m.Lock,
				"TryLock": m.TryLock,
				"Unlock":  func() error { _, err := m.Unlock(); return err },
				"Extend":  func() error { _, err := m.Extend(); return err },
				"Valid":   func() error { _, err := m.Valid(); return err },
				"KeepAlive": func() error {
					_, err := m.KeepAlive(context.Background())
					return err
				},
				"RunLocked": func() error {
					return m.RunLocked(context.Background(), func(context.Context) error { return nil })
				},
			}
			for call, fn := range calls {
				err := fn()
				require.ErrorIs(t, err, ErrInvalidArgument, call)
				var argErr *ArgumentError
				require.ErrorAs(t, err, &argErr, call)
				assert.Equal(t, tt.arg, argErr.Arg, call)
				assert.Contains(t, err.Error(), tt.arg, call)
			}
			assert.Empty(t, servers[0].Keys(), "no server is contacted")
		})
	}
}

func TestNilContextIsRejected(t *testing.T) {
	_, pools := miniPools(t, 1)
	m := New(pools...).NewMutex("nil-ctx")
	var nilCtx context.Context
	err := m.LockContext(nilCtx)
	var argErr *ArgumentError
	require.ErrorAs(t, err, &argErr)
	assert.Equal(t, "ctx", argErr.Arg)
	_, err = m.UnlockContext(nilCtx)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = m.ExtendContext(nilCtx)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestUnlockAndExtendWithoutLockReportNotHeld(t *testing.T) {
	servers, pools := miniPools(t, 3)
	m := New(pools...).NewMutex("never-locked")
	ok, err := m.Unlock()
	assert.False(t, ok)
	assert.ErrorIs(t, err, ErrNotHeld)
	ok, err = m.Extend()
	assert.False(t, ok)
	assert.ErrorIs(t, err, ErrNotHeld)
	for _, s := range servers {
		assert.Empty(t, s.Keys())
	}
}

func TestDefaultsMatchRedsync(t *testing.T) {
	_, pools := miniPools(t, 5)
	m := New(pools...).NewMutex("defaults")
	assert.Equal(t, 8*time.Second, m.cfg.expiry)
	assert.Equal(t, 32, m.cfg.tries)
	assert.Equal(t, 0.01, m.cfg.driftFactor)
	assert.Equal(t, 0.05, m.cfg.timeoutFactor)
	assert.Equal(t, 3, m.nodes.quorum)
	for i := 1; i < 200; i++ {
		d := m.cfg.delayFunc(i)
		assert.GreaterOrEqual(t, d, 50*time.Millisecond)
		assert.Less(t, d, 250*time.Millisecond)
	}
	v1, err := m.cfg.genValueFunc()
	require.NoError(t, err)
	v2, err := m.cfg.genValueFunc()
	require.NoError(t, err)
	assert.Len(t, v1, 24, "16 bytes, base64")
	assert.NotEqual(t, v1, v2)
}

func TestLockOnMiniredisQuorum(t *testing.T) {
	servers, pools := miniPools(t, 3)
	rs := New(pools...)
	m := rs.NewMutex("mini", WithExpiry(time.Second))
	require.NoError(t, m.Lock())
	rs.Wait() // Lock returns once a quorum answered
	for _, s := range servers {
		got, err := s.Get("mini")
		require.NoError(t, err)
		assert.Equal(t, m.Value(), got)
		assert.Equal(t, time.Second, s.TTL("mini"))
	}
	other := rs.NewMutex("mini", WithTries(1))
	err := other.Lock()
	var taken *ErrTaken
	require.ErrorAs(t, err, &taken)
	assert.ElementsMatch(t, []int{0, 1, 2}, taken.Nodes)

	ok, err := m.Unlock()
	require.NoError(t, err)
	assert.True(t, ok)
	rs.Wait() // Unlock returns once a quorum answered
	for _, s := range servers {
		assert.False(t, s.Exists("mini"))
	}
}

func TestErrorsKeepRedsyncTexts(t *testing.T) {
	assert.Equal(t, "redsync: failed to acquire lock", ErrFailed.Error())
	assert.Equal(t, "redsync: failed to extend lock", ErrExtendFailed.Error())
	assert.Equal(t, "redsync: failed to unlock, lock was already expired", ErrLockAlreadyExpired.Error())
	assert.Equal(t, "lock already taken, locked nodes: [0 2]", (&ErrTaken{Nodes: []int{0, 2}}).Error())
	assert.Equal(t, "node #1: lock already taken", (&ErrNodeTaken{Node: 1}).Error())
	cause := errors.New("boom")
	redisErr := &RedisError{Node: 3, Err: cause}
	assert.Equal(t, "node #3: boom", redisErr.Error())
	assert.ErrorIs(t, redisErr, cause)
}
