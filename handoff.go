package redsync

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/handoff"
	"github.com/quorumlock/redsync/redis"
)

// The Mutex's side of hand-off (see internal/handoff for the design): the
// adapter between a Mutex and the Queues of its Redsync.

// handoffMarker is the value the release script leaves in the key for the
// waiters it notified (see handoff.Marker). It begins with
// reservedValuePrefix, which no lock value may (see checkValue).
const handoffMarker = handoff.Marker

// maxHandoffGrace bounds how long the placeholder keeps a released lock for
// the waiters that were told about it.
const maxHandoffGrace = handoff.MaxGrace

// releaseChannel is the pub/sub channel on which releases of name are
// announced.
func releaseChannel(name string) string {
	return handoff.ReleaseChannel(name)
}

// handoffState is a Redsync's waiter queues, made at the first waiter.
type handoffState struct {
	mu     sync.Mutex // serializes making queues
	queues atomic.Pointer[handoff.Queues]
}

// started returns the queues, nil when nobody in this process ever waited.
func (h *handoffState) started() *handoff.Queues {
	return h.queues.Load()
}

// start returns the queues, made for rs if needed.
func (h *handoffState) start(rs *Redsync) *handoff.Queues {
	if q := h.queues.Load(); q != nil {
		return q
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if q := h.queues.Load(); q != nil {
		return q
	}
	servers := make([]redis.Subscriber, len(rs.pools))
	for i, pool := range rs.pools {
		if sub, ok := pool.(redis.Subscriber); ok {
			servers[i] = recoveringSubscriber{sub}
		}
	}
	q := handoff.New(handoff.Config{
		Servers:      servers,
		Goroutines:   (*goroutineCount)(&rs.inflight),
		Terms:        handOverTerms,
		ReleaseOffer: releaseOffer,
	})
	h.queues.Store(q)
	return q
}

// A waiter is one Lock call waiting for a name: its place in the queue,
// and the channel that wakes it.
type waiter struct {
	w    handoff.Waiter
	wake chan struct{} // signalled when the head should try again; buffered
}

// spec describes m's waiters to the queues.
func (m *Mutex) spec() handoff.Spec {
	return handoff.Spec{Name: m.name, Channel: m.channel, Owner: m}
}

// handOverTerms are what the waiters of a Mutex (the owner) accept of a
// hand-over (handoff.Config.Terms).
func handOverTerms(owner any) handoff.Terms {
	m := owner.(*Mutex)
	return handoff.Terms{
		// Fencing agrees on a token with the acquire; shuffled pools
		// number the servers differently in each Mutex.
		MayTakeOver: !m.cfg.fencing && !m.cfg.shuffle,
		ExpiryArg:   m.args.expiryMillis,
		Validity:    m.cfg.expiry - m.drift(),
		Quorum:      m.nodes.quorum,
	}
}

// join queues a waiter of m whose failed try started at since, and
// subscribes to the name's releases on every listener.
func (h *handoffState) join(m *Mutex, since time.Time) *waiter {
	w := &waiter{wake: make(chan struct{}, 1)}
	h.start(m.rs).Join(&w.w, m.spec(), since, w.wake)
	return w
}

// joinBehind queues a waiter of m, without a try first, if other waiters
// of this process already queue for its name: a first try would find the
// lock held or reserved for them. It returns nil when nobody queues.
func (h *handoffState) joinBehind(m *Mutex) *waiter {
	q := h.started()
	if q == nil || !q.Waiting() {
		return nil
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	if !q.JoinBehind(&w.w, m.spec(), w.wake) {
		return nil
	}
	return w
}

// attempting records that w starts an attempt (see handoff.Waiter); it
// returns the hand-over made to w meanwhile, which w must take (see
// takeOffer) rather than attempt.
func (w *waiter) attempting(start time.Time) *handOffer {
	if o := w.w.Attempting(start); o != nil {
		return o.Attached().(*handOffer)
	}
	return nil
}

// idle records that w waits, ready to be handed the lock with value; ""
// when it may not be.
func (w *waiter) idle(value string) { w.w.Idle(value) }

// head reports whether w is first in its queue.
func (w *waiter) head() bool { return w.w.Head() }

// leave takes w out of its queue (see handoff.Waiter.Leave).
func (w *waiter) leave(acquired bool, heldUntil time.Time) { w.w.Leave(acquired, heldUntil) }

// signal wakes w to try again.
func (w *waiter) signal() { w.w.Signal() }

// staleListeners returns the servers (bit i: server i in m's order, the
// first 64) whose listener of this process the release of m must leave
// out when it counts the waiters that heard it (see
// handoff.Queues.StaleListeners).
func (h *handoffState) staleListeners(m *Mutex) uint64 {
	q := h.started()
	if q == nil {
		return 0 // nobody in this process ever waited
	}
	return q.StaleListeners(m.name, m.channel, len(m.nodes.pools), m.serverIndex)
}

// releasedHere records that a Mutex of this process released name on a
// quorum of servers: the head waiter here need not wait for the servers'
// announcements to reach it.
func (h *handoffState) releasedHere(name string) {
	if q := h.started(); q != nil {
		q.ReleasedHere(name)
	}
}

// state returns what the queues know of name, for tests.
func (h *handoffState) state(name string) handoff.NameState {
	if q := h.started(); q != nil {
		return q.State(name)
	}
	return handoff.NameState{}
}

// goroutineCount is a Redsync's in-flight count as the listeners count
// their goroutines, so that Redsync.Wait waits for them.
type goroutineCount inflightCount

func (c *goroutineCount) Add()  { (*inflightCount)(c).add() }
func (c *goroutineCount) Done() { (*inflightCount)(c).done() }

// recoveringSubscriber is a pool's redis.Subscriber whose panics, and
// those of its subscriptions, are recovered into errors (see subscribe).
type recoveringSubscriber struct {
	sub redis.Subscriber
}

func (s recoveringSubscriber) Subscribe(ctx context.Context) (redis.Subscription, error) {
	return subscribe(ctx, s.sub)
}
