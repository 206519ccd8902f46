package valkeygo

import (
	"context"
	"errors"
	"sync"

	"github.com/valkey-io/valkey-go"

	redsyncredis "github.com/quorumlock/redsync/redis"
)

// errSubscriptionClosed is what a Subscription says once it is closed, or
// once valkey-go stopped calling its hooks without saying why.
var errSubscriptionClosed = errors.New("valkeygo: pub/sub connection closed")

// Subscribe dedicates a connection of the valkey.Client behind the Cmdable
// to pub/sub (Client().Dedicate()) and checks it with a PING within ctx;
// NewPool says why not through valkeycompat's PubSub.
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, _ := p.delegate.Client().Dedicate() // client.Close releases it
	s := &subscription{
		client:   client,
		received: make(chan struct{}, 1),
		queued:   make(chan struct{}, 1),
		sent:     make(chan struct{}),
	}
	s.hooksDone = client.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage:      s.onMessage,
		OnSubscription: s.onSubscription,
	})
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, err
	}
	senderCtx, stop := context.WithCancel(context.Background())
	s.stopSender = stop
	go s.send(senderCtx)
	return s, nil
}

// A subscription is a dedicated valkey-go connection with pub/sub hooks.
//
// valkey-go calls the hooks from the goroutine that reads the connection, so
// they must not block: they queue what the server sent for Receive. A
// Subscribe or Unsubscribe is queued too, for a goroutine of the
// subscription's own (send): valkey-go returns from a SUBSCRIBE only once the
// server confirmed it, and the contract wants Subscribe to send and return.
type subscription struct {
	client valkey.DedicatedClient
	// hooksDone delivers why valkey-go stopped calling the hooks (the
	// connection failed or was closed), then is closed. Receive reads it.
	hooksDone <-chan error

	mu      sync.Mutex // guards the fields below
	events  []redsyncredis.Event
	err     error     // why the subscription failed, for Receive once events is empty
	pending []command // commands for send, in call order
	closed  bool

	received chan struct{} // signalled when events or err change; buffered
	queued   chan struct{} // signalled when pending grows; buffered

	stopSender context.CancelFunc
	sent       chan struct{} // closed when send returns
}

// A command is a queued Subscribe or Unsubscribe.
type command struct {
	unsubscribe bool
	channels    []string
}

func (s *subscription) Subscribe(ctx context.Context, channels ...string) error {
	if len(channels) == 0 {
		return nil
	}
	return s.queue(ctx, command{channels: channels})
}

// Unsubscribe without channels unsubscribes from every channel, as
// UNSUBSCRIBE does.
func (s *subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	return s.queue(ctx, command{unsubscribe: true, channels: channels})
}

// queue hands cmd to send. A context that is already done fails it;
// otherwise it is not used: a failure to send shows in Receive.
func (s *subscription) queue(ctx context.Context, cmd command) error {
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSubscriptionClosed
	}
	s.pending = append(s.pending, cmd)
	signal(s.queued)
	return nil
}

// send sends the queued commands, in order, those queued together in one
// round trip, until ctx is cancelled (by Close) or a command fails (then
// Receive reports the failure, and the caller closes the subscription).
func (s *subscription) send(ctx context.Context) {
	defer close(s.sent)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.queued:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		cmds := make(valkey.Commands, len(batch))
		for i, c := range batch {
			if c.unsubscribe {
				cmds[i] = s.client.B().Unsubscribe().Channel(c.channels...).Build()
			} else {
				cmds[i] = s.client.B().Subscribe().Channel(c.channels...).Build()
			}
		}
		for _, reply := range s.client.DoMulti(ctx, cmds...) {
			if err := reply.Error(); err != nil {
				if ctx.Err() == nil {
					s.fail(err)
				}
				return
			}
		}
	}
}

func (s *subscription) onMessage(m valkey.PubSubMessage) {
	s.deliver(redsyncredis.Event{Kind: redsyncredis.Message, Channel: m.Channel})
}

func (s *subscription) onSubscription(sub valkey.PubSubSubscription) {
	switch sub.Kind {
	case "subscribe":
		s.deliver(redsyncredis.Event{Kind: redsyncredis.Subscribed, Channel: sub.Channel, Count: int(sub.Count)})
	case "unsubscribe":
		s.deliver(redsyncredis.Event{Kind: redsyncredis.Unsubscribed, Channel: sub.Channel, Count: int(sub.Count)})
	}
}

// deliver queues ev for Receive. The queue has no bound: a hook must not
// block, and dropping a confirmation would leave the caller waiting for it.
func (s *subscription) deliver(ev redsyncredis.Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	signal(s.received)
}

// fail records the first failure, for Receive to return once it has
// returned the events that came before.
func (s *subscription) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	signal(s.received)
}

// Receive returns the queued confirmations and messages in the order the
// server sent them, then the error that ended the connection: valkey-go does
// not reconnect a dedicated connection.
func (s *subscription) Receive() (redsyncredis.Event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > 0 {
			ev := s.events[0]
			s.events = s.events[1:]
			s.mu.Unlock()
			return ev, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return redsyncredis.Event{}, err
		}
		select {
		case <-s.received:
		case err, ok := <-s.hooksDone:
			if !ok || err == nil {
				err = errSubscriptionClosed
			}
			s.fail(err)
		}
	}
}

// Close stops the sender and closes the connection (rather than returning
// it to the client's pool, which would first unsubscribe it and wait for
// the server's answer).
func (s *subscription) Close() error {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if closed {
		return nil
	}
	s.stopSender()
	<-s.sent
	s.client.Close()
	return nil
}

// signal wakes the goroutine waiting on ch, a channel with a buffer of one,
// or leaves a wake-up there for its next wait.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
