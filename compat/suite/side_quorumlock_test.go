//go:build quorumlock

package suite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"

	peer "github.com/quorumlock/redsync/compat/peer/redsyncv4"
)

// This file is this library's side: compat/run.sh rewrites the suite's
// import prefix (github.com/go-redsync/redsync/v4 above becomes
// github.com/quorumlock/redsync) and builds it with -tags quorumlock. See
// side_redsync_test.go.

// quorumlock is true: the library under test is this one.
const quorumlock = true

// side names the library under test in messages.
const side = "quorumlock"

// settle waits for the requests still in flight: operations return at
// quorum and let the other servers' replies come in the background.
func settle(rs *redsync.Redsync) { rs.Wait() }

// isArgumentError reports whether err is an *ArgumentError.
func isArgumentError(err error) bool {
	var arg *redsync.ArgumentError
	return errors.As(err, &arg) && errors.Is(err, redsync.ErrInvalidArgument)
}

// isNotHeld reports whether err is ErrNotHeld.
func isNotHeld(err error) bool { return errors.Is(err, redsync.ErrNotHeld) }

// isBacklogged reports whether err is ErrBacklogged.
func isBacklogged(err error) bool { return errors.Is(err, redsync.ErrBacklogged) }

// unbatchedPool is the go-redis v9 pool with batching off.
func unbatchedPool(c goredislib.UniversalClient) redis.Pool {
	return goredis.NewPoolWithOptions(c, goredis.WithBatching(false))
}

// pollingOptions makes a Mutex poll as redsync does.
func pollingOptions() []redsync.Option { return []redsync.Option{redsync.WithHandoff(false)} }

// awaitWaiter returns once the Lock started on name listens for its
// release on every server (hand-off: the waiter subscribes to the sharded
// channel redsync:released{<name>} where its adapter and server can, to
// the classic redsync:released:<name> otherwise); a Lock that polls
// (polling) only had time for its first try. The names of this suite have
// no braces.
func awaitWaiter(t *testing.T, f *fleet, name string, polling bool) {
	t.Helper()
	if polling {
		pause(10)
		return
	}
	classic, sharded := "redsync:released:"+name, "redsync:released{"+name+"}"
	deadline := time.Now().Add(10 * time.Second)
	for i, c := range f.raw {
		for {
			n, err := c.PubSubNumSub(context.Background(), classic).Result()
			if err == nil && n[classic] > 0 {
				break
			}
			s, err := c.PubSubShardNumSub(context.Background(), sharded).Result()
			if err == nil && s[sharded] > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d: nobody listens on %s or %s after 10 s (err %v)", i, classic, sharded, err)
			}
			pause(1)
		}
	}
}

// The other library of the mixed-fleet tests.
var (
	peerName    = peer.Name
	newPeer     = peer.NewMutex
	settlePeers = peer.Wait
)
