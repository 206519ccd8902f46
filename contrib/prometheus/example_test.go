package redsyncprom_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	redsyncprom "github.com/quorumlock/redsync/contrib/prometheus"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

func Example() {
	// Three Redis servers (embedded here).
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

	reg := prometheus.NewRegistry()
	obs, err := redsyncprom.New(reg)
	if err != nil {
		panic(err)
	}
	rs := redsync.New(pools...)
	rs.SetObserver(obs)

	holder := rs.NewMutex("orders")
	if err := holder.Lock(); err != nil {
		panic(err)
	}
	_ = rs.NewMutex("orders").TryLock() // taken
	if _, err := holder.Unlock(); err != nil {
		panic(err)
	}
	rs.Wait()

	// What a scrape of /metrics shows (the counters of the operations).
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "redsync_operations_total") || strings.HasPrefix(line, "redsync_lock_attempts_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// redsync_lock_attempts_total{outcome="ok"} 1
	// redsync_lock_attempts_total{outcome="taken"} 1
	// redsync_operations_total{op="lock",outcome="ok"} 1
	// redsync_operations_total{op="lock",outcome="taken"} 1
	// redsync_operations_total{op="unlock",outcome="ok"} 1
}
