package handoff

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// A listener keeps one pub/sub connection to one server, subscribed to the
// release channels of the names that this process's waiters wait for,
// while there are any. Where the connection can (redis.ShardedSubscription)
// it subscribes to the sharded channel of each name that has one
// (ShardedReleaseChannel), else to the classic one (ReleaseChannel); once
// the server refused SSUBSCRIBE (redis.ErrNoShardedPubSub), it reconnects
// and subscribes to the classic channels only, for the rest of its life.
//
// want and unwant never wait for it: they only change the set of wanted
// channels and wake the listener's goroutines, which do all the I/O, so a
// server that cannot be reached slows nobody but its listener. One
// goroutine (run) connects and receives; while connected, a second one
// (send) brings the server's subscriptions in line with the wanted set.
// run reconnects after a failure and stops once nothing is wanted.
type listener struct {
	node       int // the server's index in Config.Servers
	sub        redis.Subscriber
	goroutines Counter
	heard      func(node int, channel, payload string) // a message (with its payload) or a confirmed subscription ("")

	mu     sync.Mutex      // guards the fields below, but active
	wanted map[string]bool // the names waited for
	// subscribed is what was asked of the current connection: channel ->
	// whether sharded (SSUBSCRIBE).
	subscribed map[string]bool
	// unsubscribing is what was subscribed on the current connection and
	// asked to be unsubscribed, until the server confirms it (channel ->
	// whether sharded): the server still counts this process as a listener
	// there (see mayCount).
	unsubscribing map[string]bool
	// sharded: the current connection subscribes to sharded channels.
	sharded bool
	// classicOnly: the server refused SSUBSCRIBE; every later connection
	// subscribes to classic channels only.
	classicOnly bool
	running     bool          // run is running
	kick        chan struct{} // buffered: wakes send
	// active is len(subscribed) + len(unsubscribing), kept atomically so
	// that a release can skip mu when the server counts no listener of
	// this process.
	active atomic.Int32
}

// newListener returns the idle listener of server node.
func newListener(node int, sub redis.Subscriber, goroutines Counter, heard func(int, string, string)) *listener {
	return &listener{node: node, sub: sub, goroutines: goroutines, heard: heard,
		wanted: make(map[string]bool), kick: make(chan struct{}, 1)}
}

// listenerBackoff is the pause before reconnecting after a failure.
const listenerBackoff = 100 * time.Millisecond

// listenerQuitWait is how long a listener that wants nothing any more
// waits for its server to confirm that the connection is subscribed to
// nothing, before it gives the connection up: a stalled server confirms
// nothing, and the caller waits for the listener (Config.Goroutines).
const listenerQuitWait = time.Second

// requestTimeout bounds a connection and each (un)subscription request.
const requestTimeout = time.Second

// mayCount reports whether the server may count this listener as one
// listening for releases of name.
func (l *listener) mayCount(name string) bool {
	if l.active.Load() == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	channel, _ := l.channel(name)
	_, subscribed := l.subscribed[channel]
	_, unsubscribing := l.unsubscribing[channel]
	return subscribed || unsubscribing
}

// channel returns the channel the current connection listens on for
// releases of name, and whether it is a sharded one. l.mu is held.
func (l *listener) channel(name string) (string, bool) {
	if l.sharded {
		if c := ShardedReleaseChannel(name); c != "" {
			return c, true
		}
	}
	return ReleaseChannel(name), false
}

// countActive updates active; l.mu is held.
func (l *listener) countActive() {
	l.active.Store(int32(len(l.subscribed) + len(l.unsubscribing)))
}

// want subscribes to the releases of name, starting the listener if
// needed.
func (l *listener) want(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wanted[name] = true
	l.wake()
	if !l.running {
		l.running = true
		l.goroutines.Add()
		go l.run()
	}
}

// unwant unsubscribes from the releases of name; the listener stops once
// the server confirms that nothing is subscribed any more.
func (l *listener) unwant(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.wanted, name)
	l.wake()
}

// wake tells send that the wanted set changed. l.mu is held.
func (l *listener) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run connects, serves the connection and reconnects after a failure,
// until nothing is wanted.
func (l *listener) run() {
	defer l.goroutines.Done()
	for {
		if l.idle() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		conn, err := l.sub.Subscribe(ctx)
		cancel()
		if err == nil {
			err = l.serve(conn)
			_ = conn.Close()
			if err == nil {
				return // nothing wanted any more: serve stopped the listener
			}
			if errors.Is(err, redis.ErrNoShardedPubSub) {
				continue // at once, for the classic channels
			}
		}
		time.Sleep(listenerBackoff + time.Duration(rand.Int63n(int64(listenerBackoff))))
	}
}

// idle stops the listener when nothing is wanted; it reports whether it did.
func (l *listener) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.wanted) == 0 {
		l.running = false
		l.subscribed, l.unsubscribing = nil, nil
		l.countActive()
		return true
	}
	return false
}

// serve runs one connection: send keeps its subscriptions in line while
// serve dispatches what the server sends, until the connection fails (an
// error) or nothing is subscribed nor wanted any more (nil, with the
// listener stopped).
func (l *listener) serve(conn redis.Subscription) error {
	l.mu.Lock()
	l.subscribed = make(map[string]bool)
	l.unsubscribing = make(map[string]bool)
	_, canShard := conn.(redis.ShardedSubscription)
	l.sharded = canShard && !l.classicOnly
	l.countActive()
	l.wake()
	l.mu.Unlock()
	stop := make(chan struct{})
	sent := make(chan struct{})
	l.goroutines.Add()
	go func() {
		defer l.goroutines.Done()
		defer close(sent)
		l.send(conn, stop)
	}()
	defer func() {
		close(stop)
		<-sent
	}()
	for {
		ev, err := conn.Receive()
		if err != nil {
			if errors.Is(err, redis.ErrNoShardedPubSub) {
				l.refuseSharded()
			}
			return err
		}
		switch ev.Kind {
		case redis.Message, redis.Subscribed:
			l.heard(l.node, ev.Channel, ev.Payload)
		case redis.Unsubscribed:
			if l.confirmUnsubscribed(ev) {
				return nil
			}
		}
	}
}

// refuseSharded records that the server refused SSUBSCRIBE.
func (l *listener) refuseSharded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.classicOnly = true
}

// confirmUnsubscribed records the server's confirmation of an
// unsubscription; it reports whether the listener stopped, nothing being
// subscribed nor wanted any more. A channel still wanted was dropped by
// the server itself (a Redis Cluster unsubscribes a sharded channel whose
// slot moved to another node): it is subscribed again.
func (l *listener) confirmUnsubscribed(ev redis.Event) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, asked := l.unsubscribing[ev.Channel]; asked {
		delete(l.unsubscribing, ev.Channel)
	} else if _, ok := l.subscribed[ev.Channel]; ok {
		delete(l.subscribed, ev.Channel)
		l.wake()
	}
	// The server counts sharded and classic channels apart: the count of
	// one kind may reach 0 while the other's are still being dropped.
	done := ev.Count == 0 && len(l.wanted) == 0 && len(l.unsubscribing) == 0
	if done {
		l.running = false
	}
	l.countActive()
	return done
}

// send subscribes and unsubscribes conn until stop is closed. It is the
// only goroutine that calls Subscribe and Unsubscribe on conn. When nothing
// is wanted and serve is still running listenerQuitWait later, it closes
// conn, which makes serve's Receive fail (see redis.Subscription).
func (l *listener) send(conn redis.Subscription, stop chan struct{}) {
	var quit quitTimer
	defer quit.stop()
	for {
		select {
		case <-stop:
			return
		case <-l.kick:
		case <-quit.c:
			if l.wantsNothing() {
				_ = conn.Close()
				return
			}
			quit.stop()
			continue
		}
		c := l.changes(&quit)
		// A failure shows in Receive, which reconnects.
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		err := c.send(ctx, conn)
		cancel()
		if errors.Is(err, redis.ErrNoShardedPubSub) {
			l.refuseSharded()
			_ = conn.Close() // Receive fails, and run reconnects
			return
		}
	}
}

// changeSet is what send asks of the server in one go: channels to
// subscribe to and unsubscribe from, classic and sharded.
type changeSet struct {
	add, drop, sAdd, sDrop []string
}

// send sends the commands of c on conn, which is a
// redis.ShardedSubscription if c has sharded channels. It returns the
// error of SSubscribe only: any other failure shows in Receive.
func (c changeSet) send(ctx context.Context, conn redis.Subscription) error {
	var err error
	if len(c.add) > 0 {
		_ = conn.Subscribe(ctx, c.add...)
	}
	if len(c.sAdd) > 0 {
		err = conn.(redis.ShardedSubscription).SSubscribe(ctx, c.sAdd...)
	}
	if len(c.drop) > 0 {
		_ = conn.Unsubscribe(ctx, c.drop...)
	}
	if len(c.sDrop) > 0 {
		_ = conn.(redis.ShardedSubscription).SUnsubscribe(ctx, c.sDrop...)
	}
	return err
}

// wantsNothing reports whether no channel is wanted.
func (l *listener) wantsNothing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.wanted) == 0
}

// changes returns the channels to subscribe to and to unsubscribe from to
// bring the connection in line with the wanted names, recorded as asked,
// and runs quit while nothing is wanted.
func (l *listener) changes(quit *quitTimer) changeSet {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.wanted) == 0 {
		quit.start(listenerQuitWait)
	} else {
		quit.stop()
	}
	var c changeSet
	for name := range l.wanted {
		channel, sharded := l.channel(name)
		if _, ok := l.subscribed[channel]; ok {
			continue
		}
		l.subscribed[channel] = sharded
		if sharded {
			c.sAdd = append(c.sAdd, channel)
		} else {
			c.add = append(c.add, channel)
		}
	}
	for channel, sharded := range l.subscribed {
		if name, _ := releaseName(channel); l.wanted[name] {
			continue
		}
		delete(l.subscribed, channel)
		l.unsubscribing[channel] = sharded
		if sharded {
			c.sDrop = append(c.sDrop, channel)
		} else {
			c.drop = append(c.drop, channel)
		}
	}
	l.countActive()
	if len(l.wanted) == 0 && len(l.subscribed) == 0 && len(c.drop)+len(c.sDrop) == 0 {
		// Nothing was subscribed on this connection, so no reply will
		// tell serve to stop: ask for one (an unsubscribe from nothing
		// answers with a count of zero).
		c.drop = append(c.drop, channelPrefix)
	}
	return c
}

// quitTimer is send's timer that runs while nothing is wanted; c is nil
// while it does not run.
type quitTimer struct {
	t *time.Timer
	c <-chan time.Time
}

// start starts the timer unless it runs.
func (q *quitTimer) start(d time.Duration) {
	if q.t == nil {
		q.t = time.NewTimer(d)
		q.c = q.t.C
	}
}

// stop stops the timer if it runs.
func (q *quitTimer) stop() {
	if q.t != nil {
		q.t.Stop()
		q.t, q.c = nil, nil
	}
}
