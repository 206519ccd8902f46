package redsync_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis/goredis"
)

// lockLogger is an Observer that prints how each Lock ended and which
// servers failed; BaseObserver provides the methods it does not need.
type lockLogger struct {
	redsync.BaseObserver
}

func (lockLogger) Done(_ context.Context, e redsync.DoneEvent) {
	if e.Op == redsync.OpLock {
		fmt.Printf("lock %s: %s after %d tries\n", e.Name, e.Outcome(), e.Tries)
	}
}

func (lockLogger) Node(_ context.Context, e redsync.NodeEvent) {
	if e.Outcome == redsync.NodeError || e.Outcome == redsync.NodeTimeout {
		fmt.Printf("server %d failed to %s: %v\n", e.Node, e.Op, e.Err)
	}
}

func ExampleRedsync_SetObserver() {
	server := miniredis.NewMiniRedis()
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
	defer client.Close()

	rs := redsync.New(goredis.NewPool(client))
	defer rs.Wait()
	rs.SetObserver(lockLogger{})

	holder := rs.NewMutex("orders")
	if err := holder.Lock(); err != nil {
		panic(err)
	}
	_ = rs.NewMutex("orders").TryLock()
	if _, err := holder.Unlock(); err != nil {
		panic(err)
	}
	// Output:
	// lock orders: ok after 1 tries
	// lock orders: taken after 1 tries
}
