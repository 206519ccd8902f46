package redsync_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis/goredis"
)

// ExampleRedsync_Check checks the servers before the program locks
// anything, with the options it locks with, and stops on a problem. This
// program keeps a restarted server out for the longest expiry, so it
// acknowledges FindingNoPersistence.
//
// The server here is miniredis, an embedded stand-in whose INFO tells
// none of what Check asks: the report says so. Against redis-server,
// report.String() prints a table such as
//
//	NODE  VERSION  ROLE    RUN ID    CLOCK        LEVEL    FINDING
//	#0    7.0.15   master  5e8e0a3c  +8µs/95µs    -        ok
//	#1    7.0.15   master  e4b1c0d2  -12µs/110µs  problem  eviction: maxmemory is 10.00M with maxmemory-policy allkeys-lru: ...
//	#2    7.0.15   master  5e8e0a3c  +3µs/87µs    problem  same-server: the pool reaches the same server as node #0 ...
func ExampleRedsync_Check() {
	server := miniredis.NewMiniRedis()
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
	defer client.Close()
	rs := redsync.New(goredis.NewPool(client))
	defer rs.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	report, err := rs.Check(ctx, redsync.WithExpiry(10*time.Second))
	if err != nil {
		panic(err) // a bad option or pool
	}
	if err := report.Err(redsync.FindingNoPersistence); err != nil {
		var finding redsync.Finding
		if errors.As(err, &finding) {
			fmt.Println("kind:", finding.Kind, "warning:", finding.Kind.Warning())
		}
		fmt.Println(err)
	}
	// Output:
	// kind: unverified warning: true
	// node #0: unverified (warning): the INFO reply has no run_id, redis_version, role, maxmemory, maxmemory_policy, aof_enabled: what they tell was not checked (is it Redis?)
}
