package goredis

import (
	"context"
	"fmt"

	"github.com/go-redis/redis/v7"

	redsyncredis "github.com/quorumlock/redsync/redis"
)

// Subscribe opens a go-redis PubSub, which takes a connection of its own
// from the client when the first channel is subscribed. It makes the pool a
// redis.Subscriber, so that waiters for a lock wake when it is released.
//
// go-redis v7's PubSub takes no context: a context that is already done
// fails Subscribe and the Subscription's Subscribe and Unsubscribe before
// anything is sent, but otherwise the client's Options bound the I/O
// (DialTimeout the dial, WriteTimeout every command).
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	if ctx != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return &subscription{pubsub: p.delegate.Subscribe()}, nil
}

type subscription struct {
	pubsub *redis.PubSub
}

func (s *subscription) Subscribe(ctx context.Context, channels ...string) error {
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return s.pubsub.Subscribe(channels...)
}

func (s *subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return s.pubsub.Unsubscribe(channels...)
}

// Receive returns the first error of the connection: go-redis then dials a
// new one and subscribes it again by itself, but the caller closes the
// PubSub and opens another, as the contract says.
func (s *subscription) Receive() (redsyncredis.Event, error) {
	for {
		msg, err := s.pubsub.Receive()
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
