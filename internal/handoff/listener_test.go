package handoff

import (
	"context"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// heardEvent is one call of a listener's heard.
type heardEvent struct {
	node    int
	channel string
}

// realListener returns a listener of server 3 on a real server, what it
// hears, a client to the server, and its goroutine count.
func realListener(t *testing.T) (*listener, chan heardEvent, *goredislib.Client, *counter) {
	t.Helper()
	s := redistest.Start(t, 1)[0]
	client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	heard := make(chan heardEvent, 64)
	goroutines := &counter{}
	sub := goredis.NewPool(client).(redis.Subscriber)
	l := newListener(3, sub, goroutines, func(node int, channel, _ string) { heard <- heardEvent{node, channel} })
	return l, heard, s.Client(t), goroutines
}

// awaitHeard waits for the listener to hear channel.
func awaitHeard(t *testing.T, heard chan heardEvent, channel string) {
	t.Helper()
	select {
	case ev := <-heard:
		assert.Equal(t, heardEvent{3, channel}, ev)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not heard", channel)
	}
}

// awaitStopped waits until the listener's goroutines ended.
func awaitStopped(t *testing.T, l *listener, goroutines *counter) {
	t.Helper()
	require.Eventually(t, func() bool { return goroutines.n.Load() == 0 }, 5*time.Second, time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.False(t, l.running)
}

func TestListenerHearsItsSubscriptionsAndTheReleasesUntilNothingIsWanted(t *testing.T) {
	l, heard, inspect, goroutines := realListener(t)
	ctx := context.Background()
	a, b := ReleaseChannel("a"), ReleaseChannel("b")
	l.want(a)
	awaitHeard(t, heard, a) // the subscription's confirmation
	assert.True(t, l.mayCount(a))
	l.want(b)
	awaitHeard(t, heard, b)

	require.NoError(t, inspect.Publish(ctx, a, "").Err())
	awaitHeard(t, heard, a)

	l.unwant(a)
	require.Eventually(t, func() bool { return !l.mayCount(a) }, 5*time.Second, time.Millisecond, "confirmed")
	assert.True(t, l.mayCount(b))
	require.NoError(t, inspect.Publish(ctx, b, "").Err())
	awaitHeard(t, heard, b)

	l.unwant(b)
	awaitStopped(t, l, goroutines)
	assert.False(t, l.mayCount(b))
	n, err := inspect.PubSubNumSub(ctx, a, b).Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{a: 0, b: 0}, n, "unsubscribed on the server")
}

func TestListenerWantedAndUnwantedAtOnceStops(t *testing.T) {
	l, _, _, goroutines := realListener(t)
	// Nothing is subscribed by the time the connection is up: the
	// listener asks the server to confirm nothing, and stops.
	l.want(ReleaseChannel("a"))
	l.unwant(ReleaseChannel("a"))
	awaitStopped(t, l, goroutines)
}

func TestListenerSubscribesAgainAfterItsConnectionIsKilled(t *testing.T) {
	l, heard, inspect, goroutines := realListener(t)
	ctx := context.Background()
	a := ReleaseChannel("a")
	l.want(a)
	awaitHeard(t, heard, a)

	require.NoError(t, inspect.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
	awaitHeard(t, heard, a) // subscribed again: a release may have gone unheard
	require.NoError(t, inspect.Publish(ctx, a, "").Err())
	awaitHeard(t, heard, a)

	l.unwant(a)
	awaitStopped(t, l, goroutines)
}

func TestListenerGivesUpAConnectionWhoseServerNeverConfirms(t *testing.T) {
	f := newFixture(t, 1)
	a := f.join("n", "a")
	require.Eventually(t, func() bool { return f.servers[0].subscribed(ReleaseChannel("n")) }, 5*time.Second, time.Millisecond)
	// The server stalls: the unsubscription is never confirmed, and the
	// listener closes its connection listenerQuitWait later (the
	// fixture's cleanup waits for its goroutines to end).
	f.servers[0].stall()
	a.Leave(false, time.Time{})
	f.awaitListenersStopped()
	assert.False(t, f.q.listeners[0].mayCount(ReleaseChannel("n")))
}
