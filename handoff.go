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

// handoffMarker is a value no lock value can be (see handoff.Marker): the
// acquire scripts of waiters that do not queue take it over, as they did
// the placeholder that earlier releases left. It begins with
// reservedValuePrefix, which no lock value may (see checkValue).
const handoffMarker = handoff.Marker

// maxHandoffGrace bounds how long a waiter that holds some servers but no
// quorum waits for the other servers to hand it the key.
const maxHandoffGrace = handoff.MaxGrace

// releaseChannel is the pub/sub channel on which releases of name are
// announced.
func releaseChannel(name string) string {
	return handoff.ReleaseChannel(name)
}

// shardedChannel is the sharded pub/sub channel of name's releases
// (handoff.ShardedReleaseChannel), "" for none or for no name.
func shardedChannel(name string) string {
	if name == "" {
		return ""
	}
	return handoff.ShardedReleaseChannel(name)
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
		Servers:    servers,
		Goroutines: (*goroutineCount)(&rs.inflight),
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
	return handoff.Spec{Name: m.name, Owner: m}
}

// join queues a waiter of m whose failed try started at since, and
// subscribes to the name's releases on every listener.
func (h *handoffState) join(m *Mutex, since time.Time) *waiter {
	w := &waiter{wake: make(chan struct{}, 1)}
	h.start(m.rs).Join(&w.w, m.spec(), since, w.wake)
	return w
}

// joinBehind queues a waiter of spec, without a try first, if other
// waiters of this process already queue for its name: a first try would
// find the lock held or reserved for them (a Mutex's), or take permits
// freed for them (a Semaphore's). It returns nil when nobody queues.
func (h *handoffState) joinBehind(spec handoff.Spec) *waiter {
	q := h.started()
	if q == nil || !q.Waiting() {
		return nil
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	if !q.JoinBehind(&w.w, spec, w.wake) {
		return nil
	}
	return w
}

// attempting records that w starts an attempt at start (see
// handoff.Waiter.Attempting).
func (w *waiter) attempting(start time.Time) { w.w.Attempting(start) }

// idle records that w waits.
func (w *waiter) idle() { w.w.Idle() }

// queue records that w queues with value in the servers' fleet queues.
func (w *waiter) queue(value string) { w.w.Queue(value) }

// handed copies the servers' announced hand-overs to w's value into dst,
// and their fencing floors into floors when not nil (see
// handoff.Waiter.Handed), and returns how many servers made one.
func (w *waiter) handed(dst []int64, floors []uint64) int { return w.w.Handed(dst, floors) }

// head reports whether w is first in its queue.
func (w *waiter) head() bool { return w.w.Head() }

// leave takes w out of its queue (see handoff.Waiter.Leave).
func (w *waiter) leave(acquired bool, heldUntil time.Time) { w.w.Leave(acquired, heldUntil) }

// releasedHere records that a Mutex of this process released name on a
// quorum of servers: the head waiter here need not wait for the servers'
// announcements to reach it.
func (h *handoffState) releasedHere(name string) {
	if q := h.started(); q != nil {
		q.ReleasedHere(name)
	}
}

// handedOverHere records that a Mutex of this process released name on a
// quorum of servers by handing it over (see handoff.Queues.HandedOverHere).
func (h *handoffState) handedOverHere(name string) {
	if q := h.started(); q != nil {
		q.HandedOverHere(name)
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
