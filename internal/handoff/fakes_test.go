package handoff

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/redis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock on by d and returns the new time.
func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// counter is a Counter whose count a test can read.
type counter struct {
	n atomic.Int64
}

func (c *counter) Add()  { c.n.Add(1) }
func (c *counter) Done() { c.n.Add(-1) }

// fakeServer is a redis.Subscriber whose subscriptions confirm
// unsubscriptions (as a server does) unless stalled, and never send
// anything else: the tests tell the queues what was heard.
type fakeServer struct {
	mu      sync.Mutex
	stalled bool
	conns   []*fakeSubscription
}

func (s *fakeServer) Subscribe(context.Context) (redis.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &fakeSubscription{server: s, events: make(chan redis.Event, 64), closed: make(chan struct{}), channels: map[string]bool{}}
	s.conns = append(s.conns, c)
	return c, nil
}

// stall holds the confirmations back.
func (s *fakeServer) stall() {
	s.mu.Lock()
	s.stalled = true
	s.mu.Unlock()
}

// subscribed reports whether some connection is subscribed to channel.
func (s *fakeServer) subscribed(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if c.channels[channel] {
			return true
		}
	}
	return false
}

type fakeSubscription struct {
	server    *fakeServer
	events    chan redis.Event
	closeOnce sync.Once
	closed    chan struct{}
	channels  map[string]bool // guarded by server.mu
	held      []redis.Event   // guarded by server.mu
}

func (c *fakeSubscription) Subscribe(_ context.Context, channels ...string) error {
	c.server.mu.Lock()
	defer c.server.mu.Unlock()
	for _, ch := range channels {
		c.channels[ch] = true
	}
	return nil
}

func (c *fakeSubscription) Unsubscribe(_ context.Context, channels ...string) error {
	c.server.mu.Lock()
	defer c.server.mu.Unlock()
	for _, ch := range channels {
		delete(c.channels, ch)
		ev := redis.Event{Kind: redis.Unsubscribed, Channel: ch, Count: len(c.channels)}
		if c.server.stalled {
			c.held = append(c.held, ev)
		} else {
			c.events <- ev
		}
	}
	return nil
}

var errClosed = errors.New("fake subscription closed")

func (c *fakeSubscription) Receive() (redis.Event, error) {
	select {
	case ev := <-c.events:
		return ev, nil
	case <-c.closed:
		return redis.Event{}, errClosed
	}
}

func (c *fakeSubscription) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// fixture is Queues over servers fake servers with a fake clock.
type fixture struct {
	t          *testing.T
	q          *Queues
	clock      *fakeClock
	servers    []*fakeServer
	goroutines *counter
}

func newFixture(t *testing.T, servers int) *fixture {
	t.Helper()
	return newFixtureWithSilent(t, servers, 0)
}

// newFixtureWithSilent is newFixture whose first silent servers cannot
// announce releases.
func newFixtureWithSilent(t *testing.T, servers, silent int) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newFakeClock(), goroutines: &counter{}}
	subs := make([]redis.Subscriber, servers)
	for i := range subs {
		s := &fakeServer{}
		f.servers = append(f.servers, s)
		if i >= silent {
			subs[i] = s
		}
	}
	f.q = New(Config{Servers: subs, Goroutines: f.goroutines, Clock: f.clock})
	t.Cleanup(f.awaitListenersStopped)
	return f
}

// awaitListenersStopped waits until every listener stopped (nobody waits
// any more by then).
func (f *fixture) awaitListenersStopped() {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.goroutines.n.Load() != 0 {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d listener goroutines still running", f.goroutines.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// testWaiter is a Waiter with its wake channel.
type testWaiter struct {
	Waiter
	wake chan struct{}
}

// spec is the Spec of a waiter of owner for name.
func spec(name string, owner any) Spec {
	return Spec{Name: name, Owner: owner}
}

// join queues a waiter of owner for name whose attempt started now.
func (f *fixture) join(name string, owner any) *testWaiter {
	w := &testWaiter{wake: make(chan struct{}, 1)}
	f.q.Join(&w.Waiter, spec(name, owner), f.clock.Now(), w.wake)
	return w
}

// woken reports whether w was signalled, and takes the signal.
func (w *testWaiter) woken() bool {
	select {
	case <-w.wake:
		return true
	default:
		return false
	}
}

// fakeShardedServer is a fakeServer whose subscriptions are
// redis.ShardedSubscriptions; with refuse, SSubscribe fails as on a
// server without sharded pub/sub.
type fakeShardedServer struct {
	fakeServer
	refuse bool
	// sSubscribed counts the SSubscribe calls per channel; guarded by
	// fakeServer.mu.
	sSubscribed map[string]int
}

func (s *fakeShardedServer) Subscribe(ctx context.Context) (redis.Subscription, error) {
	c, _ := s.fakeServer.Subscribe(ctx)
	return fakeShardedSubscription{c.(*fakeSubscription), s}, nil
}

// sSubscribes returns how many times channel was asked for with SSubscribe.
func (s *fakeShardedServer) sSubscribes(channel string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sSubscribed[channel]
}

// drop unsubscribes every connection from the sharded channel, as a
// cluster does when the channel's slot moves.
func (s *fakeShardedServer) drop(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if c.channels[channel] {
			delete(c.channels, channel)
			c.events <- redis.Event{Kind: redis.Unsubscribed, Channel: channel, Count: len(c.channels)}
		}
	}
}

type fakeShardedSubscription struct {
	*fakeSubscription
	server *fakeShardedServer
}

func (c fakeShardedSubscription) SSubscribe(ctx context.Context, channels ...string) error {
	if c.server.refuse {
		return fmt.Errorf("fake: %w", redis.ErrNoShardedPubSub)
	}
	c.server.mu.Lock()
	if c.server.sSubscribed == nil {
		c.server.sSubscribed = make(map[string]int)
	}
	for _, ch := range channels {
		c.server.sSubscribed[ch]++
	}
	c.server.mu.Unlock()
	return c.Subscribe(ctx, channels...)
}

func (c fakeShardedSubscription) SUnsubscribe(ctx context.Context, channels ...string) error {
	return c.Unsubscribe(ctx, channels...)
}
