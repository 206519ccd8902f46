package rueidis

import (
	"context"
	"errors"

	"github.com/redis/rueidis"

	"github.com/quorumlock/redsync/internal/pubsubqueue"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

// errSubscriptionClosed is what a Subscription says once it is closed, or
// once rueidis stopped calling its hooks without saying why.
var errSubscriptionClosed = errors.New("rueidis: pub/sub connection closed")

// Subscribe dedicates a connection of the rueidis.Client behind the Cmdable
// to pub/sub (Client().Dedicate()) and checks it with a PING within ctx;
// NewPool says why not through rueidiscompat's PubSub. The Subscription is
// a pubsubqueue.Queue that the connection's pub/sub hooks feed, and a
// redsyncredis.ShardedSubscription except on a cluster client.
func (p *pool) Subscribe(ctx context.Context) (redsyncredis.Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, _ := p.delegate.Client().Dedicate() // client.Close releases it
	q := pubsubqueue.New(errSubscriptionClosed)
	hooksDone := client.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(m rueidis.PubSubMessage) { q.Message(m.Channel, m.Message) },
		OnSubscription: func(s rueidis.PubSubSubscription) {
			q.Confirm(s.Kind, s.Channel, s.Count)
		},
	})
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, err
	}
	q.Start(dedicatedConn{client}, hooksDone)
	if p.delegate.Client().Mode() == rueidis.ClientModeCluster {
		// A dedicated connection of a cluster client goes to one node:
		// sharded channels of other nodes' slots would be refused there.
		return q, nil
	}
	return pubsubqueue.Sharded{Queue: q}, nil
}

// dedicatedConn is the pubsubqueue.Conn of a dedicated rueidis connection.
type dedicatedConn struct {
	client rueidis.DedicatedClient
}

// Do sends the commands with DoMulti: rueidis returns from a SUBSCRIBE only
// once the server confirmed it.
func (c dedicatedConn) Do(ctx context.Context, batch []pubsubqueue.Command) error {
	cmds := make(rueidis.Commands, len(batch))
	for i, cmd := range batch {
		switch {
		case cmd.Unsubscribe && cmd.Sharded:
			cmds[i] = c.client.B().Sunsubscribe().Channel(cmd.Channels...).Build()
		case cmd.Unsubscribe:
			cmds[i] = c.client.B().Unsubscribe().Channel(cmd.Channels...).Build()
		case cmd.Sharded:
			cmds[i] = c.client.B().Ssubscribe().Channel(cmd.Channels...).Build()
		default:
			cmds[i] = c.client.B().Subscribe().Channel(cmd.Channels...).Build()
		}
	}
	for _, reply := range c.client.DoMulti(ctx, cmds...) {
		if err := reply.Error(); err != nil {
			return redsyncredis.ShardedRefusal(err)
		}
	}
	return nil
}

// Close closes the connection rather than returning it to the client's
// pool, which would first unsubscribe it and wait for the server's answer.
// rueidis then stops calling the hooks; it does not reconnect a dedicated
// connection.
func (c dedicatedConn) Close() {
	c.client.Close()
}
