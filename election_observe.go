package redsync

import (
	"context"
	"sync"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// How often Observe reads the leader without being told of a change:
// pushed changes are the usual case where a pool listens (a message
// missed while a connection was down is caught by the slow poll), and
// pools that cannot listen are polled.
const (
	observeSafetyPoll = time.Second
	observePoll       = 100 * time.Millisecond
	// observeRedial is the pause before a lost listening connection is
	// opened again.
	observeRedial = 100 * time.Millisecond
)

// Observe returns a channel that receives the current leader, then every
// change of leader (a new term, or a Proclaim within the term), in the
// order of terms, until ctx ends; the channel is closed once the
// goroutines behind it stopped. Each leader is read from a quorum (see
// Leader) when a leader's record is announced: Campaign and Proclaim
// publish it on a channel named after the record key, and Observe listens
// to it on every pool that is a redis.Subscriber, one connection per
// server for each call of Observe; where no pool listens it reads the
// leader every 100ms instead. A leader that led for less time than a read
// takes may be skipped, and times without a leader are not reported. The
// receiver should keep reading: a change is sent only once the one
// before it was received, and a change read meanwhile replaces it.
//
// A nil ctx or a bad Election gives a closed channel.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	ch := make(chan Leader)
	if e.check(ctx) != nil {
		close(ch)
		return ch
	}
	go e.observe(ctx, ch)
	return ch
}

// observe is the goroutine behind Observe; it owns ch and the listeners.
func (e *Election) observe(ctx context.Context, ch chan<- Leader) {
	defer close(ch)
	changed := make(chan struct{}, 1)
	var listeners sync.WaitGroup
	defer listeners.Wait()
	every := observePoll
	for _, pool := range e.reader.nodes.pools {
		sub, ok := pool.(redis.Subscriber)
		if !ok {
			continue
		}
		every = observeSafetyPoll
		listeners.Go(func() { e.listen(ctx, recoveringSubscriber{sub}, changed) })
	}
	poll := time.NewTicker(every)
	defer poll.Stop()
	var last Leader
	for {
		if l, err := e.Leader(ctx); err == nil && newerLeader(l, last) {
			select {
			case ch <- l:
				last = l
			case <-ctx.Done():
				return
			}
			continue // what changed while it waited to be received
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-poll.C:
		}
	}
}

// newerLeader reports whether l comes after last: a larger term, or a
// later record of the same term.
func newerLeader(l, last Leader) bool {
	return l.Term > last.Term || (l.Term == last.Term && l.seq > last.seq)
}

// listen signals changed on every announcement of the election's record
// on one server, and once every (re)subscription is confirmed (a change
// may have been missed while it was not subscribed), until ctx ends.
func (e *Election) listen(ctx context.Context, sub redis.Subscriber, changed chan<- struct{}) {
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	redial := time.NewTimer(0)
	defer redial.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-redial.C:
		}
		if conn, err := sub.Subscribe(ctx); err == nil {
			// Close ends a Receive blocked on a server that has nothing
			// to say when ctx ends.
			stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
			if conn.Subscribe(ctx, e.recordKey) == nil {
				for {
					ev, err := conn.Receive()
					if err != nil {
						break
					}
					if ev.Kind == redis.Message || ev.Kind == redis.Subscribed {
						signal()
					}
				}
			}
			stop()
			_ = conn.Close()
		}
		redial.Reset(observeRedial)
	}
}
