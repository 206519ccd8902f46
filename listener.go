package redsync

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
// Lock and Unlock never wait for it: want and unwant only change the set
// of wanted channels and wake the listener's goroutines, which do all the
// I/O, so a server that cannot be reached slows nobody but its listener.
// One goroutine (run) connects and receives; while connected, a second one
// (send) brings the server's subscriptions in line with the wanted set.
// run reconnects after a failure and stops once nothing is wanted.
type listener struct {
	h        *handoff
	node     int // the server's index in the pools given to New
	sub      redis.Subscriber
	inflight *inflightCount

	mu         sync.Mutex // guards the fields below, but active
	wanted     map[string]bool
	subscribed map[string]bool // what was asked of the current connection
	// unsubscribing is what was subscribed on the current connection and
	// asked to be unsubscribed, until the server confirms it: the server
	// still counts this process as a listener there (see staleListeners).
	unsubscribing map[string]bool
	running       bool          // run is running
	kick          chan struct{} // buffered: wakes send
	// active is len(subscribed) + len(unsubscribing), kept atomically so
	// that an Unlock can skip l.mu when the server counts no listener of
	// this process.
	active int32
}

// mayCount reports whether the server may count this listener as one
// listening on channel.
func (l *listener) mayCount(channel string) bool {
	if atomic.LoadInt32(&l.active) == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subscribed[channel] || l.unsubscribing[channel]
}

// countActive updates active; l.mu is held.
func (l *listener) countActive() {
	atomic.StoreInt32(&l.active, int32(len(l.subscribed)+len(l.unsubscribing)))
}

// want subscribes to channel, starting the listener if needed.
func (l *listener) want(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wanted == nil {
		l.wanted = make(map[string]bool)
		l.kick = make(chan struct{}, 1)
	}
	l.wanted[channel] = true
	l.wake()
	if !l.running {
		l.running = true
		l.inflight.add()
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

// listenerBackoff is the pause before reconnecting after a failure.
const listenerBackoff = 100 * time.Millisecond

func (l *listener) run() {
	defer l.inflight.done()
	for {
		if l.idle() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := subscribe(ctx, l.sub)
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
	l.inflight.add()
	go func() {
		defer l.inflight.done()
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
			l.h.heard(l.node, ev.Channel)
		case redis.Unsubscribed:
			l.mu.Lock()
			delete(l.unsubscribing, ev.Channel)
			done := ev.Count == 0 && len(l.wanted) == 0
			if done {
				l.running = false
			}
			l.countActive()
			l.mu.Unlock()
			if done {
				return nil
			}
		}
	}
}

// listenerQuitWait is how long a listener that wants nothing any more
// waits for its server to confirm that the connection is subscribed to
// nothing, before it gives the connection up: a stalled server confirms
// nothing, and Redsync.Wait waits for the listener.
const listenerQuitWait = time.Second

// send subscribes and unsubscribes conn until stop is closed. It is the
// only goroutine that calls Subscribe and Unsubscribe on conn. When nothing
// is wanted and serve is still running listenerQuitWait later, it closes
// conn, which makes serve's Receive fail (see redis.Subscription).
func (l *listener) send(conn redis.Subscription, stop chan struct{}) {
	var quit *time.Timer // runs while nothing is wanted
	var quitC <-chan time.Time
	defer func() {
		if quit != nil {
			quit.Stop()
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-l.kick:
		case <-quitC:
			l.mu.Lock()
			idle := len(l.wanted) == 0
			l.mu.Unlock()
			if idle {
				_ = conn.Close()
				return
			}
			quit, quitC = nil, nil
			continue
		}
		var add, drop []string
		l.mu.Lock()
		if len(l.wanted) == 0 {
			if quit == nil {
				quit = time.NewTimer(listenerQuitWait)
				quitC = quit.C
			}
		} else if quit != nil {
			quit.Stop()
			quit, quitC = nil, nil
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
			drop = append(drop, releaseChannelPrefix)
		}
		l.mu.Unlock()
		// A failure shows in Receive, which reconnects.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if len(add) > 0 {
			_ = conn.Subscribe(ctx, add...)
		}
		if len(drop) > 0 {
			_ = conn.Unsubscribe(ctx, drop...)
		}
		cancel()
	}
}

// A handOffer is an Unlock that hands the lock over to the head waiter of
// its process (see scripts.HandOver). The waiter holds the lock once a
// quorum of servers set its value within its validity, which counts from
// before the release was sent, as if the waiter had sent an acquire then:
// on each server the key went from the releaser's value to the waiter's in
// one step, so nobody else can have held it there in between.
//
// The releaser settles the offer when its round returns. The waiter takes
// it (takeOffer) or, when it gives up first, abandons it; whoever of the
// two comes last releases what the offer set when the waiter does not
// hold the lock.
type handOffer struct {
	w          *waiter
	value      string // the waiter's value
	valueArg   any    // value, converted once for the requests
	expiryArg  any    // the waiter's expiry in milliseconds
	hold       *holding
	start      time.Time // when the release was about to be sent
	handed     int32     // servers that set value (atomic)
	done       chan struct{}
	mu         sync.Mutex // guards the fields below
	settled    bool
	abandoned  bool
	grantedTil time.Time // the waiter's validity; zero when not granted
}
