package redsync

import (
	"sync/atomic"
	"time"
)

// nodeState tells whether a server is backlogged: many requests sent to it
// (backlogMin or more) and not one reply for longer than the per-server
// deadline. A stopped server, say, answers nothing while the connections
// to it stay open: every request sent to it waits, on a goroutine, until
// its context ends (bounded by the expiry), and under load they would pile
// up by the thousand. Rounds spare a backlogged server the requests that
// are not needed (see round's skip): an acquire or extension not sent
// cannot set anything there. Once the server answers again, requests go
// out as before.
type nodeState struct {
	pending int64 // atomic: requests sent and not returned
	// since is when the server last answered, or when pending last rose
	// from zero (atomic, see monoNow).
	since int64
}

// monoBase is the origin of monoNow.
var monoBase = time.Now()

// monoNow is the time on the monotonic clock, in nanoseconds since
// monoBase: a step of the wall clock does not make a server look silent.
func monoNow() int64 {
	return int64(time.Since(monoBase))
}

// backlogMin is the number of requests waiting for a server from which it
// may count as backlogged: fewer cost little while they wait, and a
// stalled server under load collects that many within milliseconds.
const backlogMin = 64

func (s *nodeState) sent() {
	if atomic.AddInt64(&s.pending, 1) == 1 {
		atomic.StoreInt64(&s.since, monoNow())
	}
}

func (s *nodeState) replied() {
	atomic.StoreInt64(&s.since, monoNow())
	atomic.AddInt64(&s.pending, -1)
}

// backlogged reports whether the server has backlogMin requests or more
// waiting and has not answered for longer than timeout.
func (s *nodeState) backlogged(timeout time.Duration) bool {
	if atomic.LoadInt64(&s.pending) < backlogMin {
		return false
	}
	return time.Duration(monoNow()-atomic.LoadInt64(&s.since)) > timeout
}
