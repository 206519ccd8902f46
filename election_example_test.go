package redsync_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis/goredis"
)

// ExampleElection campaigns, works as leader while the leadership lasts,
// and hands it to the next candidate.
func ExampleElection() {
	server := miniredis.NewMiniRedis()
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
	defer client.Close()
	rs := redsync.New(goredis.NewPool(client))
	defer rs.Wait()
	ctx := context.Background()

	e := rs.NewElection("billing-leader")
	if err := e.Campaign(ctx, "host-7"); err != nil {
		panic(err)
	}
	leader, err := e.Leader(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("leader:", leader.Value, "term is mine:", leader.Term == e.Term())
	select {
	case <-e.Done():
		fmt.Println("lost:", context.Cause(e.Context())) // stop working as leader
	default:
		fmt.Println("still leading")
	}

	if err := e.Resign(ctx); err != nil {
		panic(err)
	}
	fmt.Println("resigned:", errors.Is(context.Cause(e.Context()), redsync.ErrUnlocked))
	_, err = e.Leader(ctx)
	fmt.Println("no leader:", errors.Is(err, redsync.ErrNoLeader))
	// Output:
	// leader: host-7 term is mine: true
	// still leading
	// resigned: true
	// no leader: true
}
