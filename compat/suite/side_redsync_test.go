//go:build !quorumlock

package suite

import (
	"testing"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"

	peer "github.com/quorumlock/redsync/compat/peer/quorumlock"
)

// This file is the redsync side: the suite built as it is written, against
// github.com/go-redsync/redsync/v4. Its twin, side_quorumlock_test.go, is
// built by compat/run.sh once the import prefix is rewritten. The two
// define the same names; each says how its library does what only one of
// them has, or what docs/differences.md lists as differing on purpose.

// quorumlock is false: the library under test is redsync v4.
const quorumlock = false

// side names the library under test in messages.
const side = "redsync"

// settle waits for requests still in flight: none with redsync, whose
// operations wait for every server.
func settle(*redsync.Redsync) {}

// isArgumentError: redsync has no *ArgumentError.
func isArgumentError(error) bool { return false }

// isNotHeld: redsync has no ErrNotHeld.
func isNotHeld(error) bool { return false }

// isBacklogged: redsync has no ErrBacklogged; it sends every request.
func isBacklogged(error) bool { return false }

// unbatchedPool: redsync's go-redis v9 pool sends every command alone.
func unbatchedPool(c goredislib.UniversalClient) redis.Pool { return goredis.NewPool(c) }

// pollingOptions: redsync always polls.
func pollingOptions() []redsync.Option { return nil }

// awaitWaiter returns once the Lock started on name had time for its first
// try: redsync polls, so nothing on the servers says it waits.
func awaitWaiter(t *testing.T, f *fleet, name string, polling bool) {
	t.Helper()
	pause(10)
}

// The other library of the mixed-fleet tests.
var (
	peerName    = peer.Name
	newPeer     = peer.NewMutex
	settlePeers = peer.Wait
)
