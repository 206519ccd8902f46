// Package pubsubqueue implements redis.Subscription over a dedicated pub/sub
// connection whose client reports what the server sent through hooks, as
// rueidis and its fork valkey-go do. The adapter supplies the connection
// (Conn) and makes its hooks call Message and Confirm; the Queue queues
// what they report for Receive, and sends Subscribe and Unsubscribe from a
// goroutine of its own.
package pubsubqueue

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/quorumlock/redsync/redis"
)

// A Command is a queued Subscribe or Unsubscribe, or with Sharded an
// SSubscribe or SUnsubscribe.
type Command struct {
	Unsubscribe bool
	Sharded     bool
	Channels    []string
}

// Conn is the dedicated connection a Queue sends its commands on.
type Conn interface {
	// Do sends cmds, in order, in one round trip, waits for the replies
	// and returns the first reply's error, if any.
	Do(ctx context.Context, cmds []Command) error
	// Close closes the connection.
	Close()
}

// A Queue is a redis.Subscription over a dedicated connection with pub/sub
// hooks.
//
// The client calls the hooks from the goroutine that reads the connection,
// so they must not block: they queue what the server sent for Receive. A
// Subscribe or Unsubscribe is queued too, for a goroutine of the Queue's own
// (send): the client returns from a SUBSCRIBE only once the server
// confirmed it, and the contract wants Subscribe to send and return.
type Queue struct {
	closedErr error

	// Set by Start, before the Queue is handed to its caller.
	conn Conn
	// hooksDone delivers why the client stopped calling the hooks (the
	// connection failed or was closed), then is closed. Receive reads it.
	hooksDone <-chan error

	mu      sync.Mutex // guards the fields below
	events  []redis.Event
	err     error     // why the subscription failed, for Receive once events is empty
	pending []Command // commands for send, in call order
	closed  bool

	received chan struct{} // signalled when events or err change; buffered
	queued   chan struct{} // signalled when pending grows; buffered

	stopSender context.CancelFunc
	sent       chan struct{} // closed when send returns
}

var _ redis.Subscription = (*Queue)(nil)

// New returns a Queue whose Message and Confirm the adapter can hand to
// the client's hooks; Start then makes it usable. closedErr is what the
// Queue says once it is closed, or once the client stopped calling its
// hooks without saying why.
func New(closedErr error) *Queue {
	return &Queue{
		closedErr: closedErr,
		received:  make(chan struct{}, 1),
		queued:    make(chan struct{}, 1),
		sent:      make(chan struct{}),
	}
}

// Start starts the goroutine that sends the commands on conn. hooksDone
// delivers why the client stopped calling the hooks, then is closed.
// Start is called once, before the Queue is used as a redis.Subscription.
func (q *Queue) Start(conn Conn, hooksDone <-chan error) {
	q.conn = conn
	q.hooksDone = hooksDone
	senderCtx, stop := context.WithCancel(context.Background())
	q.stopSender = stop
	go q.send(senderCtx)
}

func (q *Queue) Subscribe(ctx context.Context, channels ...string) error {
	if len(channels) == 0 {
		return nil
	}
	return q.queue(ctx, Command{Channels: channels})
}

// Unsubscribe without channels unsubscribes from every channel, as
// UNSUBSCRIBE does.
func (q *Queue) Unsubscribe(ctx context.Context, channels ...string) error {
	return q.queue(ctx, Command{Unsubscribe: true, Channels: channels})
}

// queue hands cmd to send. A context that is already done fails it;
// otherwise it is not used: a failure to send shows in Receive.
func (q *Queue) queue(ctx context.Context, cmd Command) error {
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.closedErr
	}
	q.pending = append(q.pending, cmd)
	signal(q.queued)
	return nil
}

// send sends the queued commands, in order, those queued together in one
// round trip, until ctx is cancelled (by Close) or a command fails (then
// Receive reports the failure, and the caller closes the subscription).
func (q *Queue) send(ctx context.Context) {
	defer close(q.sent)
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.queued:
		}
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if err := q.do(ctx, batch); err != nil {
			if ctx.Err() == nil {
				q.fail(err)
			}
			return
		}
	}
}

// do is conn.Do on send's goroutine, which is the Queue's own: a panic of
// the client there fails the subscription instead of crashing the process.
func (q *Queue) do(ctx context.Context, batch []Command) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("pubsubqueue: the client panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return q.conn.Do(ctx, batch)
}

// Sharded is a Queue whose connection also subscribes to sharded channels:
// a redis.ShardedSubscription. The adapter's Conn must send the commands
// with Sharded as SSUBSCRIBE and SUNSUBSCRIBE, and fail the one the
// server refuses as an unknown command with an error that wraps
// redis.ErrNoShardedPubSub (see redis.ShardedRefusal).
type Sharded struct {
	*Queue
}

var _ redis.ShardedSubscription = Sharded{}

// SSubscribe is Subscribe for sharded channels.
func (s Sharded) SSubscribe(ctx context.Context, channels ...string) error {
	if len(channels) == 0 {
		return nil
	}
	return s.queue(ctx, Command{Sharded: true, Channels: channels})
}

// SUnsubscribe is Unsubscribe for sharded channels.
func (s Sharded) SUnsubscribe(ctx context.Context, channels ...string) error {
	return s.queue(ctx, Command{Unsubscribe: true, Sharded: true, Channels: channels})
}

// Message is for the client's message hook: a message was published on
// channel, with payload.
func (q *Queue) Message(channel, payload string) {
	q.deliver(redis.Event{Kind: redis.Message, Channel: channel, Payload: payload})
}

// Confirm is for the client's subscription hook: the server confirmed a
// "subscribe" or "unsubscribe" (kind) of channel, or an "ssubscribe" or
// "sunsubscribe", after which the connection is subscribed to count
// channels (of that kind). Other kinds are ignored.
func (q *Queue) Confirm(kind, channel string, count int64) {
	switch kind {
	case "subscribe", "ssubscribe":
		q.deliver(redis.Event{Kind: redis.Subscribed, Channel: channel, Count: int(count)})
	case "unsubscribe", "sunsubscribe":
		q.deliver(redis.Event{Kind: redis.Unsubscribed, Channel: channel, Count: int(count)})
	}
}

// deliver queues ev for Receive. The queue has no bound: a hook must not
// block, and dropping a confirmation would leave the caller waiting for it.
func (q *Queue) deliver(ev redis.Event) {
	q.mu.Lock()
	q.events = append(q.events, ev)
	q.mu.Unlock()
	signal(q.received)
}

// fail records the first failure, for Receive to return once it has
// returned the events that came before.
func (q *Queue) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	signal(q.received)
}

// Receive returns the queued confirmations and messages in the order the
// server sent them, then the error that ended the connection: the client
// does not reconnect a dedicated connection.
func (q *Queue) Receive() (redis.Event, error) {
	for {
		q.mu.Lock()
		if len(q.events) > 0 {
			ev := q.events[0]
			q.events = q.events[1:]
			q.mu.Unlock()
			return ev, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return redis.Event{}, err
		}
		select {
		case <-q.received:
		case err, ok := <-q.hooksDone:
			if !ok || err == nil {
				err = q.closedErr
			}
			q.fail(err)
		}
	}
}

// Close stops the sender, waits for it to return, then closes the
// connection.
func (q *Queue) Close() error {
	q.mu.Lock()
	closed := q.closed
	q.closed = true
	q.mu.Unlock()
	if closed {
		return nil
	}
	q.stopSender()
	<-q.sent
	q.conn.Close()
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
