package redsync_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis/goredis"
)

// ExampleMutex_KeepAlive holds a lock for longer than its expiry: the lock
// is extended in the background, and the work stops if it is lost.
func ExampleMutex_KeepAlive() {
	server := miniredis.NewMiniRedis()
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
	defer client.Close()
	rs := redsync.New(goredis.NewPool(client))
	defer rs.Wait()

	mutex := rs.NewMutex("report", redsync.WithExpiry(300*time.Millisecond))
	if err := mutex.Lock(); err != nil {
		panic(err)
	}
	held, err := mutex.KeepAlive(context.Background())
	if err != nil {
		panic(err)
	}
	for step := 0; step < 5; step++ { // 500 ms of work
		select {
		case <-held.Done():
			fmt.Println("lost the lock:", context.Cause(held))
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Println("work done, lock still held:", held.Err() == nil)
	if _, err := mutex.Unlock(); err != nil {
		panic(err)
	}
	fmt.Println("after Unlock:", context.Cause(held))
	// Output:
	// work done, lock still held: true
	// after Unlock: redsync: lock released by Unlock
}

// ExampleRedsync_RunLocked runs a function under a lock that is kept alive
// while it runs and released when it returns, whatever it returns.
func ExampleRedsync_RunLocked() {
	server := miniredis.NewMiniRedis()
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
	defer client.Close()
	rs := redsync.New(goredis.NewPool(client))
	defer rs.Wait()

	err := rs.RunLocked(context.Background(), "nightly-cleanup", func(ctx context.Context) error {
		fmt.Println("cleaning up, lock held:", ctx.Err() == nil)
		return nil
	})
	fmt.Println("err:", err)
	fmt.Println("key left:", server.Exists("nightly-cleanup"))
	// Output:
	// cleaning up, lock held: true
	// err: <nil>
	// key left: false
}
