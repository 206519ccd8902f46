package goredis

import (
	"context"
	"fmt"

	"github.com/go-redis/redis/v8"

	redsyncredis "github.com/quorumlock/redsync/redis"
)

// Subscribe opens a go-redis PubSub, which dials a connection of its own
// when the Subscription's first Subscribe asks for a channel, within that
// call's context. It makes the pool a redis.Subscriber, so that waiters for
// a lock wake when it is released.
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &subscription{pubsub: p.delegate.Subscribe(ctx)}, nil
}

type subscription struct {
	pubsub *redis.PubSub
}

func (s *subscription) Subscribe(ctx context.Context, channels ...string) error {
	return s.pubsub.Subscribe(ctx, channels...)
}

func (s *subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	return s.pubsub.Unsubscribe(ctx, channels...)
}

// Receive returns the first error of the connection: go-redis then dials a
// new one and subscribes it again by itself, but the caller closes the
// PubSub and opens another, as the contract says.
func (s *subscription) Receive() (redsyncredis.Event, error) {
	for {
		msg, err := s.pubsub.Receive(context.Background())
		if err != nil {
			return redsyncredis.Event{}, err
		}
		switch msg := msg.(type) {
		case *redis.Message:
			return redsyncredis.Event{Kind: redsyncredis.Message, Channel: msg.Channel, Payload: msg.Payload}, nil
		case *redis.Subscription:
			switch msg.Kind {
			case "subscribe":
				return redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: msg.Channel, Count: msg.Count}, nil
			case "unsubscribe":
				return redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: msg.Channel, Count: msg.Count}, nil
			}
		case *redis.Pong:
		default:
			return redsyncredis.Event{}, fmt.Errorf("goredis: unexpected pub/sub reply %T", msg)
		}
	}
}

func (s *subscription) Close() error {
	return s.pubsub.Close()
}
