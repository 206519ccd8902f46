package redsync_test

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// ExampleWithFencing gives every acquisition of a lock a fencing token that
// is larger than the tokens of all earlier ones; the storage the lock
// protects keeps the highest token it accepted and refuses writes that
// carry a lower one.
func ExampleWithFencing() {
	var pools []redis.Pool
	for i := 0; i < 3; i++ {
		server := miniredis.NewMiniRedis()
		if err := server.Start(); err != nil {
			panic(err)
		}
		defer server.Close()
		client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
		defer client.Close()
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	defer rs.Wait()

	// lockAndToken stands for one holder: it locks, reads its token (to be
	// sent along with every write to the storage) and unlocks.
	lockAndToken := func(options ...redsync.Option) uint64 {
		mutex := rs.NewMutex("invoice:42", options...)
		if err := mutex.Lock(); err != nil {
			panic(err)
		}
		token := mutex.Token()
		if _, err := mutex.Unlock(); err != nil {
			panic(err)
		}
		return token
	}
	first := lockAndToken(redsync.WithFencing(true))
	second := lockAndToken(redsync.WithFencing(true))
	fmt.Println("first token issued:", first > 0)
	fmt.Println("second token larger:", second > first)
	fmt.Println("token without fencing:", lockAndToken())
	// Output:
	// first token issued: true
	// second token larger: true
	// token without fencing: 0
}
