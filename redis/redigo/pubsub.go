package redigo

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

// Subscribe takes a connection from the delegate pool, within ctx, and
// dedicates it to pub/sub until Close returns it (redigo unsubscribes it
// before reusing it). It makes the pool a redis.Subscriber, so that waiters
// for a lock wake when it is released.
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	c, err := p.Get(ctx)
	if err != nil {
		return nil, err
	}
	return &subscription{conn: redis.PubSubConn{Conn: c.(*conn).delegate}}, nil
}

type subscription struct {
	conn redis.PubSubConn
}

// Subscribe sends SUBSCRIBE; ctx is not used: redigo writes and flushes
// without one, into the socket's buffer.
func (s *subscription) Subscribe(_ context.Context, channels ...string) error {
	return s.conn.Subscribe(redis.Args{}.AddFlat(channels)...)
}

// Unsubscribe sends UNSUBSCRIBE, like Subscribe.
func (s *subscription) Unsubscribe(_ context.Context, channels ...string) error {
	return s.conn.Unsubscribe(redis.Args{}.AddFlat(channels)...)
}

func (s *subscription) Receive() (redsyncredis.Event, error) {
	for {
		switch msg := s.conn.Receive().(type) {
		case error:
			return redsyncredis.Event{}, msg
		case redis.Message:
			return redsyncredis.Event{Kind: redsyncredis.Message, Channel: msg.Channel}, nil
		case redis.Subscription:
			switch msg.Kind {
			case "subscribe":
				return redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: msg.Channel, Count: msg.Count}, nil
			case "unsubscribe":
				return redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: msg.Channel, Count: msg.Count}, nil
			}
		case redis.Pong:
		default:
			return redsyncredis.Event{}, fmt.Errorf("redigo: unexpected pub/sub reply %T", msg)
		}
	}
}

func (s *subscription) Close() error {
	return s.conn.Close()
}
