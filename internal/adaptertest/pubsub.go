package adaptertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

// received is what one call of Subscription.Receive returned.
type received struct {
	ev  redsyncredis.Event
	err error
}

// receiver calls Receive in a goroutine of its own, as redsync's listener
// does, until Receive fails or reports that nothing is subscribed any more.
// The test goroutine may call Subscribe and Unsubscribe meanwhile, and calls
// Close once done is closed: the contract forbids Close during Receive.
type receiver struct {
	got  chan received
	done chan struct{}
}

func startReceiving(sub redsyncredis.Subscription) *receiver {
	return startReceivingUntil(sub, 1)
}

// startReceivingUntil is startReceiving for a Subscription whose server
// reports a count of zero the given number of times before nothing is
// subscribed any more (it counts sharded and classic channels apart).
func startReceivingUntil(sub redsyncredis.Subscription, zeros int) *receiver {
	r := &receiver{got: make(chan received, 16), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			ev, err := sub.Receive()
			r.got <- received{ev, err}
			if err != nil {
				return
			}
			if ev.Kind == redsyncredis.Unsubscribed && ev.Count == 0 {
				if zeros--; zeros == 0 {
					return
				}
			}
		}
	}()
	return r
}

// next returns what Receive returned next, failing the test if it returns
// nothing within opTimeout.
func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case got := <-r.got:
		return got
	case <-time.After(opTimeout):
		t.Fatalf("Receive returned nothing within %v", opTimeout)
		return received{}
	}
}

// nextEvent is next for a Receive that must succeed.
func (r *receiver) nextEvent(t *testing.T) redsyncredis.Event {
	t.Helper()
	got := r.next(t)
	require.NoError(t, got.err, "Receive")
	return got.ev
}

// stopped waits until the receiving goroutine has returned.
func (r *receiver) stopped(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(opTimeout):
		t.Fatalf("Receive did not return within %v", opTimeout)
	}
}

// subscribe opens a Subscription of pool within opTimeout.
func subscribe(t *testing.T, pool redsyncredis.Pool) redsyncredis.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	sub, err := pool.(redsyncredis.Subscriber).Subscribe(ctx)
	require.NoError(t, err, "Subscriber.Subscribe")
	require.NotNil(t, sub, "Subscriber.Subscribe returned a nil Subscription without an error")
	return sub
}

// numSub returns how many connections the server counts as subscribed to
// channel.
func (s *suite) numSub(t *testing.T, channel string) int64 {
	t.Helper()
	n, err := s.client.PubSubNumSub(clientCtx(t), channel).Result()
	require.NoError(t, err)
	return n[channel]
}

// testSubscription follows a Subscription through the life redsync's
// listener gives it: several channels subscribed at once, a message
// published by another client, unsubscribing channel by channel until the
// count is 0, and Close.
func (s *suite) testSubscription(t *testing.T) {
	first, second := key(t)+":first", key(t)+":second"
	sub := subscribe(t, s.pool)
	closed := false
	defer func() {
		if !closed {
			_ = sub.Close()
		}
	}()

	require.NoError(t, sub.Subscribe(clientCtx(t), first, second))
	r := startReceiving(sub)
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: first, Count: 1}, r.nextEvent(t))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: second, Count: 2}, r.nextEvent(t))

	// The confirmation means the server delivers what is published from
	// now on: no sleep, no retry.
	n, err := s.client.Publish(clientCtx(t), second, "released").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the server counts one subscriber")
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Message, Channel: second, Payload: "released"}, r.nextEvent(t))

	require.NoError(t, sub.Unsubscribe(clientCtx(t), first))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: first, Count: 1}, r.nextEvent(t))
	assert.Zero(t, s.numSub(t, first))
	assert.EqualValues(t, 1, s.numSub(t, second))

	require.NoError(t, sub.Unsubscribe(clientCtx(t), second))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: second, Count: 0}, r.nextEvent(t))
	r.stopped(t)
	closed = true
	assert.NoError(t, sub.Close(), "Close")
	assert.Zero(t, s.numSub(t, second))
}

// testSubscriptionServerKilled checks that a Subscription whose server dies
// says so from Receive, the signal redsync's listener reconnects on,
// instead of blocking or reconnecting behind the caller's back.
func (s *suite) testSubscriptionServerKilled(t *testing.T) {
	srv := redistest.Start(t, 1)[0] // not the suite's: it dies
	sub := subscribe(t, s.newPool(t, srv.Addr()))

	require.NoError(t, sub.Subscribe(clientCtx(t), key(t)))
	r := startReceiving(sub)
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: key(t), Count: 1}, r.nextEvent(t))

	srv.Kill(t)
	start := time.Now()
	got := r.next(t)
	require.Error(t, got.err, "Receive after the server died returned %+v", got.ev)
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), got.err)
	r.stopped(t)
	_ = sub.Close() // the connection is gone: an error is as good as nil
}

// shardedSubscribe opens a Subscription of pool and returns it as a
// redis.ShardedSubscription, skipping the test for an adapter whose
// Subscription is not one.
func shardedSubscribe(t *testing.T, pool redsyncredis.Pool) redsyncredis.ShardedSubscription {
	t.Helper()
	sub := subscribe(t, pool)
	sharded, ok := sub.(redsyncredis.ShardedSubscription)
	if !ok {
		_ = sub.Close()
		t.Skip("the Subscription is not a redis.ShardedSubscription: the listener subscribes to classic channels")
	}
	return sharded
}

// testShardedSubscription is testSubscription for sharded channels
// (SSUBSCRIBE, SPUBLISH), with a classic channel subscribed on the same
// connection: the server counts the two kinds apart.
func (s *suite) testShardedSubscription(t *testing.T) {
	first, second, classic := key(t)+":first", key(t)+":second", key(t)+":classic"
	sub := shardedSubscribe(t, s.pool)
	closed := false
	defer func() {
		if !closed {
			_ = sub.Close()
		}
	}()

	require.NoError(t, sub.SSubscribe(clientCtx(t), first, second))
	r := startReceivingUntil(sub, 2)
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: first, Count: 1}, r.nextEvent(t))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: second, Count: 2}, r.nextEvent(t))
	require.NoError(t, sub.Subscribe(clientCtx(t), classic))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: classic, Count: 1}, r.nextEvent(t))

	n, err := s.client.SPublish(clientCtx(t), second, "released").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the server counts one subscriber")
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Message, Channel: second, Payload: "released"}, r.nextEvent(t))
	n, err = s.client.Publish(clientCtx(t), second, "not sharded").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a PUBLISH does not reach a sharded subscriber")

	require.NoError(t, sub.SUnsubscribe(clientCtx(t), first, second))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: first, Count: 1}, r.nextEvent(t))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: second, Count: 0}, r.nextEvent(t))
	shards, err := s.client.PubSubShardNumSub(clientCtx(t), first, second).Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{first: 0, second: 0}, shards)

	require.NoError(t, sub.Unsubscribe(clientCtx(t), classic))
	assert.Equal(t, redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: classic, Count: 0}, r.nextEvent(t))
	r.stopped(t)
	closed = true
	assert.NoError(t, sub.Close(), "Close")
}

// testNoShardedPubSub: on a server that does not know SSUBSCRIBE (one
// before Redis 7.0; here the command is renamed away), the Subscription
// says so with an error that wraps redis.ErrNoShardedPubSub, from
// SSubscribe or from Receive: the listener's signal to subscribe to the
// classic channels instead.
func (s *suite) testNoShardedPubSub(t *testing.T) {
	srv := redistest.StartWithArgs(t, 1, "--rename-command", "SSUBSCRIBE", "")[0]
	sub := shardedSubscribe(t, s.newPool(t, srv.Addr()))
	defer func() { _ = sub.Close() }()

	if err := sub.SSubscribe(clientCtx(t), key(t)); err != nil {
		require.ErrorIs(t, err, redsyncredis.ErrNoShardedPubSub, "SSubscribe")
		return
	}
	r := startReceiving(sub)
	got := r.next(t)
	require.ErrorIs(t, got.err, redsyncredis.ErrNoShardedPubSub, "Receive returned %+v", got.ev)
	r.stopped(t)
}
