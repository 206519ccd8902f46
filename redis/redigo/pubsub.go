package redigo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

	mu        sync.Mutex // guards the fields below
	receiving bool       // Receive is running
	closing   bool       // Close was called
	closed    bool       // the connection went back to the pool
}

// errClosed is what Receive returns once Close was called.
var errClosed = errors.New("redigo: pub/sub connection closed")

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
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return redsyncredis.Event{}, errClosed
	}
	s.receiving = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.receiving = false
		s.mu.Unlock()
	}()
	for {
		switch msg := s.conn.Receive().(type) {
		case error:
			return redsyncredis.Event{}, msg
		case redis.Message:
			return redsyncredis.Event{Kind: redsyncredis.Message, Channel: msg.Channel, Payload: string(msg.Data)}, nil
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

// Close first closes the network connection, so that it never waits for
// the server: a pooled redigo connection would otherwise unsubscribe and
// read the server's answers before going back to the pool, which a stalled
// server never sends. A Receive blocked in another goroutine then fails at
// once, and the connection goes back to the pool, which discards it, when
// its goroutine calls Close again. Only a connection that implements
// redis.ConnWithContext (as those of *redis.Pool do) can be closed that
// way; with another kind, Close does not interrupt a Receive, and waits
// for the server as redigo's does.
func (s *subscription) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closing = true
	s.interrupt()
	if s.receiving {
		return nil
	}
	s.closed = true
	// The network connection is closed already: redigo's errors from
	// unsubscribing on it say nothing new.
	_ = s.conn.Close()
	return nil
}

// interrupt closes the network connection under the redigo connection:
// redigo does so when a receive's context is already past its deadline.
func (s *subscription) interrupt() {
	c, ok := s.conn.Conn.(redis.ConnWithContext)
	if !ok {
		return
	}
	past, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	_, _ = c.ReceiveContext(past)
}
