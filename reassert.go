package redsync

import (
	"context"
	"sync"
	"time"

	"github.com/quorumlock/redsync/redis"
)

// Re-asserting a lock: a Lock returns once a quorum of servers set its
// key, and a contender's try that reached one of the others first took
// that server (it releases it when its own try fails). The holder would
// then hold the lock on a bare quorum, one failure away from losing it,
// for its whole hold. So a granted attempt sets its key, once the
// contender's is gone, on each server that refused it: SET NX, never over
// a value that is not the holder's, with the expiry the other servers
// were given, as long as the lock is held. A server whose key has no
// expiry, or keeps another value past a few tries, is left alone.

// refusals collects the servers that refused an attempt, until the
// attempt is decided; a refusal that comes after the attempt was granted
// is re-asserted at once.
type refusals struct {
	mu      sync.Mutex // guards the fields below
	nodes   []int
	decided bool
	granted bool
}

// refused records that node refused the attempt; it reports whether the
// attempt was granted already, so that the caller re-asserts node itself.
func (r *refusals) refused(node int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return r.granted
	}
	r.nodes = append(r.nodes, node)
	return false
}

// decide records the outcome of the attempt and returns the servers to
// re-assert: those that refused it so far, when it was granted.
func (r *refusals) decide(granted bool) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decided, r.granted = true, granted
	if !granted {
		return nil
	}
	return r.nodes
}

// reassertTries bounds the SET NX a holder sends to one server that
// refused its attempt; the pause between them doubles from
// reassertFirstPause.
const (
	reassertTries      = 10
	reassertFirstPause = time.Millisecond
)

// reassert sets value on node, in the background, once the value that
// refused the attempt started at start is gone, while hold is held. Not
// for a Pool of the user's own, which sees only redsync's calls.
func (m *Mutex) reassert(node int, pool redis.Pool, value string, hold *holding, start time.Time) {
	if _, ours := pool.(redis.Subscriber); !ours || m.cfg.fencing {
		return
	}
	m.nodes.inflight.add()
	go func() {
		defer m.nodes.inflight.done()
		expiresAt := start.Add(m.cfg.expiry)
		until := start.Add(m.cfg.expiry - m.drift())
		pause := reassertFirstPause
		for try := 0; try < reassertTries; try++ {
			t := getTimer(pause)
			<-t.C
			putTimer(t)
			now := time.Now()
			if !now.Before(until) || hold.givenUpFor(node) {
				return
			}
			ok, ttl, err := m.setIfMissing(pool, value, expiresAt.Sub(now))
			if ok {
				if !hold.record(node) {
					m.releaseLate(pool, value) // unlocked meanwhile
				}
				return
			}
			switch {
			case err == nil && ttl == -time.Millisecond:
				return // a value without expiry: not a contender's try
			case err == nil && ttl == -2*time.Millisecond:
				pause = reassertFirstPause // gone since: at once
				continue
			}
			pause *= 2
			if err == nil && ttl+time.Millisecond < pause {
				pause = ttl + time.Millisecond
			}
		}
	}()
}

// setIfMissing sets the key to value for expiry on one server if it is
// missing; when it is not, ttl is its time to live (-1 without expiry).
func (m *Mutex) setIfMissing(pool redis.Pool, value string, expiry time.Duration) (ok bool, ttl time.Duration, err error) {
	defer recoverPanic(&err)
	if expiry < time.Millisecond {
		return false, 0, nil
	}
	ctx := m.rs.boundedContext(context.Background(), m.cfg.expiry)
	conn, err := pool.Get(ctx)
	if err != nil {
		return false, 0, err
	}
	defer conn.Close()
	if ok, err = conn.SetNX(m.name, value, expiry); ok || err != nil {
		return ok, 0, err
	}
	ttl, err = conn.PTTL(m.name)
	return false, ttl, err
}
