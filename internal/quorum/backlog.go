package quorum

import (
	"sync/atomic"
	"time"

	"github.com/quorumlock/redsync/internal/clock"
)

// NodeState tells whether a server is backlogged: many requests sent to it
// (BacklogMin or more) and not one reply for longer than the per-server
// deadline. A stopped server, say, answers nothing while the connections
// to it stay open: every request sent to it waits, on a goroutine, until
// its context ends (bounded by the expiry), and under load they would pile
// up by the thousand. Rounds may spare a backlogged server the requests
// that are not needed (see Round.Skip). Once the server answers again,
// requests go out as before. The zero NodeState has nothing waiting; its
// methods are safe for concurrent use, and every call on one NodeState
// must pass the same clock.
type NodeState struct {
	pending int64 // atomic: requests sent and not returned
	// since is when the server last answered, or when pending last rose
	// from zero (atomic, see sinceEpoch).
	since int64
}

// epoch is the origin of sinceEpoch.
var epoch = time.Now()

// sinceEpoch is c's time in nanoseconds since epoch; on the real clock a
// monotonic reading, so that a step of the wall clock does not make a
// server look silent.
func sinceEpoch(c clock.Clock) int64 {
	return int64(c.Now().Sub(epoch))
}

// BacklogMin is the number of requests waiting for a server from which it
// may count as backlogged: fewer cost little while they wait, and a
// stalled server under load collects that many within milliseconds.
const BacklogMin = 64

// Sent records a request sent to the server.
func (s *NodeState) Sent(c clock.Clock) {
	if atomic.AddInt64(&s.pending, 1) == 1 {
		atomic.StoreInt64(&s.since, sinceEpoch(c))
	}
}

// Replied records the return of a request recorded by Sent.
func (s *NodeState) Replied(c clock.Clock) {
	atomic.StoreInt64(&s.since, sinceEpoch(c))
	atomic.AddInt64(&s.pending, -1)
}

// Backlogged reports whether the server has BacklogMin requests or more
// waiting and has not answered for longer than timeout.
func (s *NodeState) Backlogged(c clock.Clock, timeout time.Duration) bool {
	if atomic.LoadInt64(&s.pending) < BacklogMin {
		return false
	}
	return time.Duration(sinceEpoch(c)-atomic.LoadInt64(&s.since)) > timeout
}
