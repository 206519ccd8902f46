package handoff

import (
	"context"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// A listener keeps one pub/sub connection to one server, subscribed to the
// release channels that this process's waiters need, while there are any.
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

	mu         sync.Mutex // guards the fields below, but active
	wanted     map[string]bool
	subscribed map[string]bool // what was asked of the current connection
	// unsubscribing is what was subscribed on the current connection and
	// asked to be unsubscribed, until the server confirms it: the server
	// still counts this process as a listener there (see StaleListeners).
	unsubscribing map[string]bool
	running       bool          // run is running
	kick          chan struct{} // buffered: wakes send
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
// listening on channel.
func (l *listener) mayCount(channel string) bool {
	if l.active.Load() == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subscribed[channel] || l.unsubscribing[channel]
}

// countActive updates active; l.mu is held.
func (l *listener) countActive() {
	l.active.Store(int32(len(l.subscribed) + len(l.unsubscribing)))
}

// want subscribes to channel, starting the listener if needed.
func (l *listener) want(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wanted[channel] = true
	l.wake()
	if !l.running {
		l.running = true
		l.goroutines.Add()
		go l.run()
	}
}

// unwant unsubscribes from channel; the listener stops once the server
// confirms that nothing is subscribed any more.
func (l *listener) unwant(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.wanted, channel)
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

// confirmUnsubscribed records the server's confirmation of an
// unsubscription; it reports whether the listener stopped, nothing being
// subscribed nor wanted any more.
func (l *listener) confirmUnsubscribed(ev redis.Event) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.unsubscribing, ev.Channel)
	done := ev.Count == 0 && len(l.wanted) == 0
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
		add, drop := l.changes(&quit)
		// A failure shows in Receive, which reconnects.
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		if len(add) > 0 {
			_ = conn.Subscribe(ctx, add...)
		}
		if len(drop) > 0 {
			_ = conn.Unsubscribe(ctx, drop...)
		}
		cancel()
	}
}

// wantsNothing reports whether no channel is wanted.
func (l *listener) wantsNothing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.wanted) == 0
}

// changes returns the channels to subscribe to and to unsubscribe from to
// bring the connection in line with the wanted set, recorded as asked,
// and runs quit while nothing is wanted.
func (l *listener) changes(quit *quitTimer) (add, drop []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.wanted) == 0 {
		quit.start(listenerQuitWait)
	} else {
		quit.stop()
	}
	for c := range l.wanted {
		if !l.subscribed[c] {
			l.subscribed[c] = true
			add = append(add, c)
		}
	}
	for c := range l.subscribed {
		if !l.wanted[c] {
			delete(l.subscribed, c)
			l.unsubscribing[c] = true
			drop = append(drop, c)
		}
	}
	l.countActive()
	if len(l.wanted) == 0 && len(l.subscribed) == 0 && len(drop) == 0 {
		// Nothing was subscribed on this connection, so no reply will
		// tell serve to stop: ask for one (an unsubscribe from nothing
		// answers with a count of zero).
		drop = append(drop, channelPrefix)
	}
	return add, drop
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
