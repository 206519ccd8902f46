package redistest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// keysOn returns the number of keys on s.
func keysOn(t *testing.T, s *Server) int64 {
	t.Helper()
	n, err := s.Client(t).DBSize(ctxTimeout(t, 5*time.Second)).Result()
	if err != nil {
		t.Fatalf("DBSIZE on %s: %v", s.Addr(), err)
	}
	return n
}

// stopsEverything runs start in a subtest and checks that its cleanup left
// no process and no directory of the servers it returned behind.
func stopsEverything(t *testing.T, start func(t *testing.T) []*Server) {
	t.Helper()
	var pids []int
	var dirs []string
	t.Run("cleanup", func(t *testing.T) {
		for _, s := range start(t) {
			pids = append(pids, s.Pid())
			dirs = append(dirs, s.dir)
		}
	})
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d still exists after cleanup", pid)
		}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("temp dir %s still exists after cleanup (stat: %v)", dir, err)
		}
	}
}

func TestStartClusterServesEverySlotOnEveryMaster(t *testing.T) {
	c := StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = client.Close() })

	ctx := ctxTimeout(t, 10*time.Second)
	const keys = 30
	for i := 0; i < keys; i++ {
		if err := client.Set(ctx, fmt.Sprint("key-", i), i, 0).Err(); err != nil {
			t.Fatalf("SET through the cluster client: %v", err)
		}
	}
	var total int64
	for i, s := range c.Masters {
		n := keysOn(t, s)
		if n == 0 {
			t.Errorf("master %d holds none of the %d keys", i, keys)
		}
		total += n
	}
	if total != keys {
		t.Errorf("the masters hold %d keys in all, want %d", total, keys)
	}
}

func TestStartClusterStopsEverything(t *testing.T) {
	stopsEverything(t, func(t *testing.T) []*Server { return StartCluster(t, 2).Masters })
}

func TestStartSentinelReplicatesAndNamesTheMaster(t *testing.T) {
	s := StartSentinel(t)
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: []string{s.Sentinel.Addr()},
	})
	t.Cleanup(func() { _ = client.Close() })

	ctx := ctxTimeout(t, 10*time.Second)
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the failover client: %v", err)
	}
	if v, err := s.Master.Client(t).Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET on the master = %q, %v; the failover client must write to it", v, err)
	}
	// Replication is asynchronous: the key reaches the replica soon.
	replica := s.Replica.Client(t)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		v, err := replica.Get(ctx, "k").Result()
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET on the replica = %q, %v; the key never reached it", v, err)
		}
	}
}

func TestStartSentinelStopsEverything(t *testing.T) {
	stopsEverything(t, func(t *testing.T) []*Server {
		s := StartSentinel(t)
		return []*Server{s.Master, s.Replica, s.Sentinel}
	})
}
