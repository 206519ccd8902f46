package fakepool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

func adapter(t *testing.T) (*miniredis.Miniredis, redis.Pool) {
	s := miniredis.RunT(t)
	client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	return s, goredis.NewPool(client)
}

func get(t *testing.T, p redis.Pool) redis.Conn {
	t.Helper()
	conn, err := p.Get(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestOptionalInterfacesOnlyWhenAsked(t *testing.T) {
	_, inner := adapter(t)
	own := fakepool.New(inner)
	var pool redis.Pool = own
	_, listens := pool.(redis.Subscriber)
	assert.False(t, listens, "a user's own Pool does not listen")
	_, does := get(t, own).(redis.Doer)
	assert.False(t, does, "nor do its Conns send any command")

	_, listens = own.Listening().(redis.Subscriber)
	assert.True(t, listens)
	assert.Equal(t, own.Listening(), own.Listening(), "one value, as a Pool given twice")
	doer, does := get(t, fakepool.New(inner, fakepool.WithDoer())).(redis.Doer)
	require.True(t, does)
	reply, err := doer.Do("PING")
	require.NoError(t, err)
	assert.Equal(t, "PONG", reply)
}

func TestHooksRunInOrderAndCallsAreCountedWhateverTheyDo(t *testing.T) {
	s, inner := adapter(t)
	p := fakepool.New(inner)
	var order []string
	p.On(fakepool.SetNX,
		fakepool.Before(func(c *fakepool.Call) error {
			order = append(order, "first "+c.Key+"="+c.Value)
			return nil
		}),
		func(c *fakepool.Call, send fakepool.Send) (any, error) {
			order = append(order, "second")
			if c.Key == "refused" {
				return false, nil
			}
			return send()
		})
	conn := get(t, p)
	ok, err := conn.SetNX("refused", "v", time.Second)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.False(t, s.Exists("refused"), "not sent")
	ok, err = conn.SetNX("sent", "v", time.Second)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, s.Exists("sent"))
	assert.Equal(t, []string{"first refused=v", "second", "first sent=v", "second"}, order)

	boom := errors.New("boom")
	script := redis.NewScript(1, "return 1", "")
	p.On(fakepool.Eval, fakepool.Fail(boom))
	_, err = conn.Eval(script, "k")
	assert.ErrorIs(t, err, boom)
	p.On(fakepool.Get, fakepool.Answer("rewritten", nil))
	v, err := conn.Get("sent")
	require.NoError(t, err)
	assert.Equal(t, "rewritten", v)
	assert.Equal(t, map[fakepool.Method]int{fakepool.PoolGet: 1, fakepool.SetNX: 2, fakepool.Eval: 1, fakepool.Get: 1}, p.Counts())
	assert.Equal(t, 1, p.Evals(script))
	assert.Equal(t, 2, p.Calls(fakepool.SetNX))
}

func TestBlockHoldsACallUntilReleasedOrItsContextEnds(t *testing.T) {
	_, inner := adapter(t)
	release := make(chan struct{})
	p := fakepool.New(inner).On(fakepool.PTTL, fakepool.Block(release))
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := p.Get(ctx)
	require.NoError(t, err)
	defer conn.Close()
	done := make(chan error)
	go func() {
		_, err := conn.PTTL("k")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("PTTL returned before release: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-done)

	p.On(fakepool.PTTL, fakepool.Block(make(chan struct{})))
	go func() {
		_, err := conn.PTTL("k")
		done <- err
	}()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

func TestWithoutAPoolOnlyHooksAnswer(t *testing.T) {
	p := fakepool.New(nil).On(fakepool.SetNX, fakepool.Answer(true, nil))
	conn := get(t, p)
	ok, err := conn.SetNX("k", "v", time.Second)
	require.NoError(t, err)
	assert.True(t, ok)
	_, err = conn.Get("k")
	assert.ErrorIs(t, err, fakepool.ErrNoServer)
	_, err = p.Listening().(redis.Subscriber).Subscribe(context.Background())
	assert.ErrorIs(t, err, fakepool.ErrNoServer)
}

func TestSubscriptionsRunHooks(t *testing.T) {
	_, inner := adapter(t)
	p := fakepool.New(inner)
	var channels []string
	p.On(fakepool.SubSubscribe, fakepool.Before(func(c *fakepool.Call) error {
		channels = append(channels, c.Args...)
		return nil
	}))
	sub, err := p.Listening().(redis.Subscriber).Subscribe(context.Background())
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.Subscribe(context.Background(), "a", "b"))
	ev, err := sub.Receive()
	require.NoError(t, err)
	assert.Equal(t, redis.Subscribed, ev.Kind)
	assert.Equal(t, []string{"a", "b"}, channels)
	assert.Equal(t, 1, p.Calls(fakepool.PoolSubscribe))
	assert.Equal(t, 1, p.Calls(fakepool.SubReceive))
}
