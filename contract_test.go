package redsync

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// realCluster is n real servers, a Redsync over go-redis pools that count
// the connections taken from them, and a client per server to look at the
// keys.
type realCluster struct {
	servers []*redistest.Server
	pools   []*countingPool
	inspect []*goredislib.Client
	rs      *Redsync
}

// countingPool counts the connections taken from a listening pool.
type countingPool struct {
	redis.Pool
	redis.Subscriber
	gets int64 // atomic
}

func (p *countingPool) Get(ctx context.Context) (redis.Conn, error) {
	atomic.AddInt64(&p.gets, 1)
	return p.Pool.Get(ctx)
}

func newRealCluster(t *testing.T, n int) *realCluster {
	t.Helper()
	c := &realCluster{servers: redistest.Start(t, n)}
	pools := make([]redis.Pool, n)
	for i, s := range c.servers {
		client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		pool := goredis.NewPool(client)
		c.pools = append(c.pools, &countingPool{Pool: pool, Subscriber: pool.(redis.Subscriber)})
		pools[i] = c.pools[i]
		c.inspect = append(c.inspect, s.Client(t))
	}
	c.rs = New(pools...)
	t.Cleanup(c.rs.Wait)
	return c
}

// gets is the number of connections taken from every pool so far.
func (c *realCluster) gets() int64 {
	var n int64
	for _, p := range c.pools {
		n += atomic.LoadInt64(&p.gets)
	}
	return n
}

// values returns what each server holds under name ("" when missing), once
// the requests on their way have landed.
func (c *realCluster) values(t *testing.T, name string) []string {
	t.Helper()
	c.rs.Wait()
	out := make([]string, len(c.inspect))
	for i, client := range c.inspect {
		v, err := client.Get(context.Background(), name).Result()
		if err != goredislib.Nil {
			require.NoError(t, err)
		}
		out[i] = v
	}
	return out
}

func TestKeepAliveAfterUnlockSendsNothing(t *testing.T) {
	c := newRealCluster(t, 3)
	m := c.rs.NewMutex("after-unlock")
	require.NoError(t, m.Lock())
	ok, err := m.Unlock()
	require.True(t, ok, err)
	before := c.gets()
	held, err := m.KeepAlive(context.Background())
	assert.Nil(t, held)
	assert.ErrorIs(t, err, ErrNotHeld)
	assert.Equal(t, before, c.gets(), "KeepAlive after Unlock sent requests")
	assert.Equal(t, []string{"", "", ""}, c.values(t, m.Name()))
	require.NoError(t, c.rs.NewMutex(m.Name()).TryLock(), "the name stays free")
}

func TestExtendAfterUnlockNeverSetsTheKeyAgain(t *testing.T) {
	c := newRealCluster(t, 3)
	m := c.rs.NewMutex("extend-after-unlock", WithSetNXOnExtend())
	require.NoError(t, m.Lock())
	ok, err := m.Unlock()
	require.True(t, ok, err)
	ok, err = m.Extend()
	assert.False(t, ok)
	var taken *ErrTaken
	assert.ErrorAs(t, err, &taken, "as redsync's plain Extend of a released lock")
	assert.Equal(t, []string{"", "", ""}, c.values(t, m.Name()))
	other := c.rs.NewMutex(m.Name())
	require.NoError(t, other.TryLock(), "the name stays free")
	ok, err = other.Unlock()
	require.True(t, ok, err)

	// Locked again, the Mutex extends (and sets missing keys) as before.
	require.NoError(t, m.Lock())
	_, err = c.inspect[0].Del(context.Background(), m.Name()).Result()
	require.NoError(t, err)
	ok, err = m.Extend()
	require.True(t, ok, err)
	assert.Equal(t, []string{m.Value(), m.Value(), m.Value()}, c.values(t, m.Name()))
}

func TestOperationsWithADoneContextSendNothing(t *testing.T) {
	c := newRealCluster(t, 3)
	m := c.rs.NewMutex("done-context")
	require.NoError(t, m.Lock())
	until := m.Until()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	before := c.gets()
	for _, op := range []struct {
		name string
		call func(context.Context) (bool, error)
	}{
		{"UnlockContext", m.UnlockContext},
		{"ExtendContext", m.ExtendContext},
		{"ValidContext", m.ValidContext},
	} {
		ok, err := op.call(done)
		assert.False(t, ok, op.name)
		assert.ErrorIs(t, err, context.Canceled, op.name)
	}
	assert.Equal(t, before, c.gets(), "a done context sent requests")
	assert.Equal(t, until, m.Until())
	value := m.Value()
	assert.Equal(t, []string{value, value, value}, c.values(t, m.Name()), "the lock is still held")
	ok, err := m.Unlock()
	assert.True(t, ok, "a later Unlock releases the lock: %v", err)
	assert.False(t, errors.Is(err, ErrLockAlreadyExpired))
	assert.Equal(t, []string{"", "", ""}, c.values(t, m.Name()))
}
