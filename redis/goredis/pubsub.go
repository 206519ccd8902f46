package goredis

import (
	"context"
	"errors"
	"fmt"

	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/redis/go-redis/v9"
)

// Subscribe opens a go-redis PubSub, which takes a connection of its own
// from the client when the first channel is subscribed. It makes the pool a
// redis.Subscriber, so that waiters for a lock wake when it is released.
//
// The Subscription is a redis.ShardedSubscription. On a *redis.ClusterClient
// it keeps one PubSub per master that owns a sharded channel subscribed
// (SSUBSCRIBE is sent to the master of the channel's slot, one command per
// slot), and one more for the classic channels (on whichever node go-redis
// picks: a classic PUBLISH reaches every node).
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if cluster, ok := p.delegate.(*redis.ClusterClient); ok {
		return newClusterSubscription(cluster), nil
	}
	return &subscription{pubsub: p.delegate.Subscribe(ctx)}, nil
}

// subscription is the Subscription of a client that talks to one server.
type subscription struct {
	pubsub *redis.PubSub
}

func (s *subscription) Subscribe(ctx context.Context, channels ...string) error {
	return s.pubsub.Subscribe(ctx, channels...)
}

func (s *subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	return s.pubsub.Unsubscribe(ctx, channels...)
}

func (s *subscription) SSubscribe(ctx context.Context, channels ...string) error {
	return s.pubsub.SSubscribe(ctx, channels...)
}

func (s *subscription) SUnsubscribe(ctx context.Context, channels ...string) error {
	return s.pubsub.SUnsubscribe(ctx, channels...)
}

func (s *subscription) Receive() (redsyncredis.Event, error) {
	return receive(s.pubsub)
}

func (s *subscription) Close() error {
	return s.pubsub.Close()
}

// receive returns the next event of pubsub; an error reply of the server
// that it does not know a command wraps redsyncredis.ErrNoShardedPubSub.
func receive(pubsub *redis.PubSub) (redsyncredis.Event, error) {
	for {
		msg, err := pubsub.Receive(context.Background())
		if err != nil {
			var reply redis.Error
			if errors.As(err, &reply) {
				err = redsyncredis.ShardedRefusal(err)
			}
			return redsyncredis.Event{}, err
		}
		switch msg := msg.(type) {
		case *redis.Message:
			return redsyncredis.Event{Kind: redsyncredis.Message, Channel: msg.Channel, Payload: msg.Payload}, nil
		case *redis.Subscription:
			switch msg.Kind {
			case "subscribe", "ssubscribe":
				return redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: msg.Channel, Count: msg.Count}, nil
			case "unsubscribe", "sunsubscribe":
				return redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: msg.Channel, Count: msg.Count}, nil
			}
		case *redis.Pong:
		default:
			return redsyncredis.Event{}, fmt.Errorf("goredis: unexpected pub/sub reply %T", msg)
		}
	}
}

var (
	_ redsyncredis.ShardedSubscription = (*subscription)(nil)
	_ redsyncredis.ShardedSubscription = (*clusterSubscription)(nil)
)
