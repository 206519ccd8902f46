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

// realListener returns a listener of server 3 on a real server started
// with args, what it hears, a client to the server, and its goroutine
// count.
func realListener(t *testing.T, args ...string) (*listener, chan heardEvent, *goredislib.Client, *counter) {
	t.Helper()
	s := redistest.StartWithArgs(t, 1, args...)[0]
	client := goredislib.NewClient(&goredislib.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	heard := make(chan heardEvent, 64)
	goroutines := &counter{}
	sub := goredis.NewPool(client).(redis.Subscriber)
	l := newListener(3, sub, goroutines, func(node int, channel, _ string) { heard <- heardEvent{node, channel} })
	return l, heard, s.Client(t), goroutines
}

// noShardedPubSub are the arguments of a redis-server that behaves as one
// before Redis 7.0 does: it knows neither SSUBSCRIBE nor SPUBLISH.
var noShardedPubSub = []string{"--rename-command", "SSUBSCRIBE", "", "--rename-command", "SPUBLISH", ""}

// listenerModes are the servers the real listener tests run on, and how
// releases of a name are announced there.
var listenerModes = []struct {
	name    string
	args    []string
	channel func(name string) string
	publish func(c *goredislib.Client, channel string) error
}{
	{"sharded", nil, ShardedReleaseChannel, func(c *goredislib.Client, channel string) error {
		return c.SPublish(context.Background(), channel, "").Err()
	}},
	{"no sharded pub/sub", noShardedPubSub, ReleaseChannel, func(c *goredislib.Client, channel string) error {
		return c.Publish(context.Background(), channel, "").Err()
	}},
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
	for _, mode := range listenerModes {
		t.Run(mode.name, func(t *testing.T) {
			l, heard, inspect, goroutines := realListener(t, mode.args...)
			ctx := context.Background()
			a, b := mode.channel("a"), mode.channel("b")
			l.want("a")
			awaitHeard(t, heard, a) // the subscription's confirmation
			assert.True(t, l.mayCount("a"))
			l.want("b")
			awaitHeard(t, heard, b)

			require.NoError(t, mode.publish(inspect, a))
			awaitHeard(t, heard, a)

			l.unwant("a")
			require.Eventually(t, func() bool { return !l.mayCount("a") }, 5*time.Second, time.Millisecond, "confirmed")
			assert.True(t, l.mayCount("b"))
			require.NoError(t, mode.publish(inspect, b))
			awaitHeard(t, heard, b)

			l.unwant("b")
			awaitStopped(t, l, goroutines)
			assert.False(t, l.mayCount("b"))
			n, err := inspect.PubSubNumSub(ctx, a, b).Result()
			require.NoError(t, err)
			assert.Equal(t, map[string]int64{a: 0, b: 0}, n, "unsubscribed on the server")
			if mode.args == nil {
				n, err := inspect.PubSubShardNumSub(ctx, a, b).Result()
				require.NoError(t, err)
				assert.Equal(t, map[string]int64{a: 0, b: 0}, n, "unsubscribed on the server")
			}
		})
	}
}

// TestListenerListensOnTheClassicChannelOfANameWithoutASlotOfItsOwn: a
// name with a "}" and no hash tag has no sharded channel; a listener that
// subscribes sharded channels subscribes its classic one on the same
// connection.
func TestListenerListensOnTheClassicChannelOfANameWithoutASlotOfItsOwn(t *testing.T) {
	l, heard, inspect, goroutines := realListener(t)
	l.want("a}b")
	awaitHeard(t, heard, ReleaseChannel("a}b"))
	l.want("c")
	awaitHeard(t, heard, ShardedReleaseChannel("c"))
	require.NoError(t, inspect.Publish(context.Background(), ReleaseChannel("a}b"), "").Err())
	awaitHeard(t, heard, ReleaseChannel("a}b"))
	l.unwant("a}b")
	l.unwant("c")
	awaitStopped(t, l, goroutines)
}

func TestListenerFallsBackToClassicChannelsWhereTheServerRefusesSSubscribe(t *testing.T) {
	l, heard, _, goroutines := realListener(t, noShardedPubSub...)
	l.want("a")
	awaitHeard(t, heard, ReleaseChannel("a"))
	l.mu.Lock()
	assert.True(t, l.classicOnly, "the listener knows the server refused SSUBSCRIBE")
	l.mu.Unlock()
	l.unwant("a")
	awaitStopped(t, l, goroutines)
}

func TestListenerWantedAndUnwantedAtOnceStops(t *testing.T) {
	l, _, _, goroutines := realListener(t)
	// Nothing is subscribed by the time the connection is up: the
	// listener asks the server to confirm nothing, and stops.
	l.want("a")
	l.unwant("a")
	awaitStopped(t, l, goroutines)
}

func TestListenerSubscribesAgainAfterItsConnectionIsKilled(t *testing.T) {
	for _, mode := range listenerModes {
		t.Run(mode.name, func(t *testing.T) {
			l, heard, inspect, goroutines := realListener(t, mode.args...)
			ctx := context.Background()
			a := mode.channel("a")
			l.want("a")
			awaitHeard(t, heard, a)

			require.NoError(t, inspect.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
			awaitHeard(t, heard, a) // subscribed again: a release may have gone unheard
			require.NoError(t, mode.publish(inspect, a))
			awaitHeard(t, heard, a)

			l.unwant("a")
			awaitStopped(t, l, goroutines)
		})
	}
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
	assert.False(t, f.q.listeners[0].mayCount("n"))
}

func TestListenerSubscribesAgainAShardedChannelTheServerDropped(t *testing.T) {
	s := &fakeShardedServer{}
	goroutines := &counter{}
	l := newListener(0, s, goroutines, func(int, string, string) {})
	channel := ShardedReleaseChannel("n")
	l.want("n")
	require.Eventually(t, func() bool { return s.sSubscribes(channel) == 1 }, 5*time.Second, time.Millisecond)
	s.drop(channel) // the slot moved
	require.Eventually(t, func() bool { return s.sSubscribes(channel) == 2 }, 5*time.Second, time.Millisecond, "subscribed again")
	assert.True(t, s.subscribed(channel))
	l.unwant("n")
	awaitStopped(t, l, goroutines)
}

func TestListenerFallsBackToClassicChannelsWhenSSubscribeFailsAtOnce(t *testing.T) {
	s := &fakeShardedServer{refuse: true}
	goroutines := &counter{}
	l := newListener(0, s, goroutines, func(int, string, string) {})
	l.want("n")
	require.Eventually(t, func() bool { return s.subscribed(ReleaseChannel("n")) }, 5*time.Second, time.Millisecond)
	assert.True(t, l.mayCount("n"))
	l.unwant("n")
	awaitStopped(t, l, goroutines)
}
