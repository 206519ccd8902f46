package goredis_test

import (
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis/goredis"
)

// BenchmarkClusterContendedLockUnlock: goroutines of one process take
// turns at locks on a 3-master Redis Cluster (one pool), so that most
// acquisitions are hand-overs announced on the release channel; the locks'
// keys spread over the masters. ns/op is per Lock+Unlock of the group.
//
//	go test -run '^$' -bench ClusterContendedLockUnlock -benchmem -count 8 ./redis/goredis
func BenchmarkClusterContendedLockUnlock(b *testing.B) {
	cluster := redistest.StartCluster(b, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	b.Cleanup(func() { _ = client.Close() })
	rs := redsync.New(goredis.NewPool(client))
	b.Cleanup(rs.Wait) // before the client is closed
	names := []string{"bench:a", "bench:b", "bench:c"}
	b.ReportAllocs()
	b.SetParallelism(2)
	var next atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		m := rs.NewMutex(names[int(next.Add(1))%len(names)])
		for pb.Next() {
			if err := m.Lock(); err != nil {
				b.Error(err)
				return
			}
			if _, err := m.Unlock(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
