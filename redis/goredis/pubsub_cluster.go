package goredis

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/hashslot"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

// clusterSubscription is the Subscription of a *redis.ClusterClient: the
// PubSubs it opened (parts), one per master for sharded channels and one
// for the classic channels, each read by a goroutine of its own that
// passes what it receives to Receive.
//
// Receive reports the events of every part, with Count the sum of the
// latest counts of all parts; the first failure of any part is its error.
type clusterSubscription struct {
	cluster *redis.ClusterClient

	events chan clusterEvent // from the parts' readers to Receive
	done   chan struct{}     // closed by Close: the readers stop
	wg     sync.WaitGroup    // the readers

	mu      sync.Mutex // guards the fields below
	classic *clusterPart
	masters map[string]*clusterPart // by address
	shards  map[string]*clusterPart // sharded channel -> its part
	closed  bool
}

// clusterPart is one PubSub of a clusterSubscription; count, guarded by
// clusterSubscription.mu, is the last count its server reported.
type clusterPart struct {
	pubsub *redis.PubSub
	count  int
}

// clusterEvent is what a part's reader received.
type clusterEvent struct {
	part *clusterPart
	ev   redsyncredis.Event
	err  error
}

func newClusterSubscription(cluster *redis.ClusterClient) *clusterSubscription {
	return &clusterSubscription{
		cluster: cluster,
		events:  make(chan clusterEvent),
		done:    make(chan struct{}),
		masters: make(map[string]*clusterPart),
		shards:  make(map[string]*clusterPart),
	}
}

// errClusterSubscriptionClosed is what Receive returns once Close was
// called.
var errClusterSubscriptionClosed = errors.New("goredis: pub/sub connection closed")

// start makes a part of pubsub and starts its reader; s.mu is held.
func (s *clusterSubscription) start(pubsub *redis.PubSub) *clusterPart {
	part := &clusterPart{pubsub: pubsub}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			ev, err := receive(pubsub)
			select {
			case s.events <- clusterEvent{part, ev, err}:
			case <-s.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return part
}

// classicPart returns the part of the classic channels, opened if needed;
// s.mu is held.
func (s *clusterSubscription) classicPart(ctx context.Context) *clusterPart {
	if s.classic == nil {
		s.classic = s.start(s.cluster.Subscribe(ctx))
	}
	return s.classic
}

func (s *clusterSubscription) Subscribe(ctx context.Context, channels ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClusterSubscriptionClosed
	}
	return s.classicPart(ctx).pubsub.Subscribe(ctx, channels...)
}

func (s *clusterSubscription) Unsubscribe(ctx context.Context, channels ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClusterSubscriptionClosed
	}
	return s.classicPart(ctx).pubsub.Unsubscribe(ctx, channels...)
}

// SSubscribe sends one SSUBSCRIBE per slot to the master of the slot, on
// that master's part. A master that cannot be found (the cluster's state
// could not be loaded) fails the whole Subscription: Receive returns the
// error.
func (s *clusterSubscription) SSubscribe(ctx context.Context, channels ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClusterSubscriptionClosed
	}
	for _, group := range bySlot(channels) {
		master, err := s.cluster.MasterForKey(ctx, group[0])
		if err != nil {
			s.fail(err)
			return err
		}
		addr := master.Options().Addr
		part := s.masters[addr]
		if part == nil {
			part = s.start(master.SSubscribe(ctx))
			s.masters[addr] = part
		}
		for _, c := range group {
			s.shards[c] = part
		}
		if err := part.pubsub.SSubscribe(ctx, group...); err != nil {
			return err
		}
	}
	return nil
}

// bySlot returns channels grouped by hash slot.
func bySlot(channels []string) [][]string {
	if len(channels) == 1 {
		return [][]string{channels}
	}
	slots := make(map[int]int) // slot -> index in groups
	var groups [][]string
	for _, c := range channels {
		slot := hashslot.Slot(c)
		i, ok := slots[slot]
		if !ok {
			i = len(groups)
			slots[slot] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	return groups
}

// SUnsubscribe sends SUNSUBSCRIBE for each channel on the part it was
// subscribed on; a channel never subscribed is confirmed at once.
func (s *clusterSubscription) SUnsubscribe(ctx context.Context, channels ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClusterSubscriptionClosed
	}
	var err error
	for _, c := range channels {
		part := s.shards[c]
		if part == nil {
			continue
		}
		delete(s.shards, c)
		err = errors.Join(err, part.pubsub.SUnsubscribe(ctx, c))
	}
	return err
}

// fail makes Receive return err; s.mu is held.
func (s *clusterSubscription) fail(err error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case s.events <- clusterEvent{err: err}:
		case <-s.done:
		}
	}()
}

func (s *clusterSubscription) Receive() (redsyncredis.Event, error) {
	select {
	case got := <-s.events:
		if got.err != nil {
			return redsyncredis.Event{}, got.err
		}
		if got.ev.Kind != redsyncredis.Message {
			s.mu.Lock()
			got.part.count = got.ev.Count
			got.ev.Count = s.count()
			s.mu.Unlock()
		}
		return got.ev, nil
	case <-s.done:
		return redsyncredis.Event{}, errClusterSubscriptionClosed
	}
}

// count returns the sum of the parts' counts; s.mu is held.
func (s *clusterSubscription) count() int {
	n := 0
	if s.classic != nil {
		n = s.classic.count
	}
	for _, part := range s.masters {
		n += part.count
	}
	return n
}

// parts returns every part; s.mu is held.
func (s *clusterSubscription) parts() []*clusterPart {
	parts := make([]*clusterPart, 0, len(s.masters)+1)
	if s.classic != nil {
		parts = append(parts, s.classic)
	}
	for _, part := range s.masters {
		parts = append(parts, part)
	}
	return parts
}

// Close closes every part and waits for their readers, which return as
// soon as their PubSub is closed.
func (s *clusterSubscription) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	var err error
	for _, part := range s.parts() {
		err = errors.Join(err, part.pubsub.Close())
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
