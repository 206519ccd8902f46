// Package observertest is what the tests of Observers share: the
// recording Observer over redsync's events (Recorder, see
// internal/eventlog), and a scripted run of locks for the tests of the
// Observers under contrib/: the same events for each, so that their
// outputs can be checked against known counts.
package observertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/eventlog"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// Recorder is an Observer that records every event of redsync's (see
// eventlog.Recorder); its zero value is ready to use.
type Recorder = eventlog.Recorder[redsync.StartEvent, redsync.AttemptEvent, redsync.NodeEvent, redsync.DoneEvent, redsync.LostEvent]

// Event is one event a Recorder recorded.
type Event = eventlog.Event[redsync.StartEvent, redsync.AttemptEvent, redsync.NodeEvent, redsync.DoneEvent, redsync.LostEvent]

// Run runs a short script with obs observing, every operation with ctx,
// on three embedded servers
// (miniredis), the last of which fails every command (node 2: "error"):
//
//   - "orders" is locked with fencing (ok), refused to a TryLock (taken),
//     extended (ok) and unlocked (ok);
//   - "reports" is locked (ok) and kept alive, but somebody else takes
//     its key on nodes 0 and 1: KeepAlive's extension is refused (taken),
//     the lock is lost, and Unlock is refused (taken).
//
// It returns when every reply has been observed, late ones included.
func Run(t testing.TB, ctx context.Context, obs redsync.Observer) {
	t.Helper()
	servers := make([]*miniredis.Miniredis, 3)
	pools := make([]redis.Pool, 3)
	for i := range servers {
		servers[i] = miniredis.RunT(t)
		// No retries: node 2's errors come back at once instead of after
		// go-redis's backoff, which could outlast the per-server deadline.
		client := goredislib.NewClient(&goredislib.Options{Addr: servers[i].Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	servers[2].SetError("LOADING Redis is loading the dataset in memory")
	rs := redsync.New(pools...)
	defer rs.Wait()
	rs.SetObserver(obs)

	orders := rs.NewMutex("orders", redsync.WithFencing(true))
	must(t, orders.LockContext(ctx))
	var taken *redsync.ErrTaken
	if err := rs.NewMutex("orders").TryLockContext(ctx); !errors.As(err, &taken) {
		t.Fatalf("TryLock of a held lock: %v", err)
	}
	_, err := orders.ExtendContext(ctx)
	must(t, err)
	_, err = orders.UnlockContext(ctx)
	must(t, err)

	reports := rs.NewMutex("reports", redsync.WithKeepAliveInterval(10*time.Millisecond))
	must(t, reports.LockContext(ctx))
	rs.Wait()
	for _, s := range servers[:2] {
		must(t, s.Set("reports", "somebody else"))
	}
	held, err := reports.KeepAlive(ctx)
	must(t, err)
	<-held.Done()
	if _, err := reports.UnlockContext(ctx); !errors.As(err, &taken) {
		t.Fatalf("Unlock of a lost lock: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
