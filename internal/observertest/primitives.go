package observertest

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// RunPrimitives runs a script of the other primitives with obs observing,
// every operation with ctx, on three embedded servers of which the last
// fails every command (node 2: "error"), as Run does:
//
//   - the Semaphore "workers" of 2 permits: Acquire of 2 (ok), TryAcquire
//     of 1 (taken), the lease's Extend (ok) and Release (ok);
//   - the MultiMutex of "a" and "b" (Name "a,b"): Lock (ok), Unlock (ok).
//
// It returns when every reply has been observed, late ones included.
func RunPrimitives(t testing.TB, ctx context.Context, obs redsync.Observer) {
	t.Helper()
	pools := make([]redis.Pool, 3)
	for i := range pools {
		server := miniredis.RunT(t)
		if i == 2 {
			server.SetError("LOADING Redis is loading the dataset in memory")
		}
		client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = client.Close() })
		pools[i] = goredis.NewPool(client)
	}
	rs := redsync.New(pools...)
	defer rs.Wait()
	rs.SetObserver(obs)

	sem := rs.NewSemaphore("workers", 2)
	lease, err := sem.Acquire(ctx, 2)
	must(t, err)
	var taken *redsync.ErrTaken
	if _, err := sem.TryAcquire(ctx, 1); !errors.As(err, &taken) {
		t.Fatalf("TryAcquire with no permit free: %v", err)
	}
	if ok, err := lease.Extend(ctx); !ok {
		t.Fatalf("Extend: %v", err)
	}
	must(t, lease.Release(ctx))

	mm := rs.NewMultiMutex([]string{"a", "b"})
	must(t, mm.LockContext(ctx))
	if ok, err := mm.UnlockContext(ctx); !ok {
		t.Fatalf("Unlock: %v", err)
	}
}
