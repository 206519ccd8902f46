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
// for a lock wake when it is released. The Subscription of a connection
// that implements redis.ConnWithContext (those of *redis.Pool do) is a
// redsyncredis.ShardedSubscription.
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	c, err := p.Get(ctx)
	if err != nil {
		return nil, err
	}
	s := &subscription{conn: redis.PubSubConn{Conn: c.(*conn).delegate}}
	if _, ok := s.conn.Conn.(redis.ConnWithContext); ok {
		return shardedSubscription{s}, nil
	}
	return s, nil
}

// shardedSubscription is the subscription of a connection that Close can
// interrupt (redis.ConnWithContext), which also subscribes to sharded
// channels. redigo does not know that SSUBSCRIBE puts a connection in
// pub/sub mode: a connection Close could not interrupt would go back to
// the pool still subscribed.
type shardedSubscription struct {
	*subscription
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

// SSubscribe sends SSUBSCRIBE, like Subscribe.
func (s shardedSubscription) SSubscribe(_ context.Context, channels ...string) error {
	return s.send("SSUBSCRIBE", channels)
}

// SUnsubscribe sends SUNSUBSCRIBE, like Subscribe.
func (s shardedSubscription) SUnsubscribe(_ context.Context, channels ...string) error {
	return s.send("SUNSUBSCRIBE", channels)
}

// send sends command with channels and flushes it.
func (s *subscription) send(command string, channels []string) error {
	if err := s.conn.Conn.Send(command, redis.Args{}.AddFlat(channels)...); err != nil {
		return err
	}
	return s.conn.Conn.Flush()
}

var _ redsyncredis.ShardedSubscription = shardedSubscription{}

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
	return receive(s.conn.Conn)
}

// receive reads the next event from c, a connection in pub/sub mode.
// redigo's PubSubConn.Receive knows no sharded pub/sub (smessage,
// ssubscribe, sunsubscribe), so the replies are read here, classic and
// sharded alike. An error reply of the server that it does not know a
// command wraps redsyncredis.ErrNoShardedPubSub.
func receive(c redis.Conn) (redsyncredis.Event, error) {
	for {
		reply, err := redis.Values(c.Receive())
		if err != nil {
			var refused redis.Error
			if errors.As(err, &refused) {
				err = redsyncredis.ShardedRefusal(err)
			}
			return redsyncredis.Event{}, err
		}
		var kind string
		if reply, err = redis.Scan(reply, &kind); err != nil {
			return redsyncredis.Event{}, err
		}
		var ev redsyncredis.Event
		switch kind {
		case "message", "smessage":
			ev.Kind = redsyncredis.Message
			_, err = redis.Scan(reply, &ev.Channel, &ev.Payload)
		case "subscribe", "ssubscribe":
			ev.Kind = redsyncredis.Subscribed
			_, err = redis.Scan(reply, &ev.Channel, &ev.Count)
		case "unsubscribe", "sunsubscribe":
			ev.Kind = redsyncredis.Unsubscribed
			_, err = redis.Scan(reply, &ev.Channel, &ev.Count)
		case "pong":
			continue
		default:
			return redsyncredis.Event{}, fmt.Errorf("redigo: unexpected pub/sub reply %q", kind)
		}
		if err != nil {
			return redsyncredis.Event{}, err
		}
		return ev, nil
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
