package goredis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// The tests below run the lock over go-redis' other UniversalClients, each
// as ONE pool: a Redis Cluster, a master watched by a sentinel, and a Ring
// are each one server in Redlock's sense (see docs/clients.md).

func TestClusterClientLocks(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	// PUBLISH reaches every node of a cluster: waiters are woken.
	assert.Implements(t, (*redsyncredis.Subscriber)(nil), goredis.NewPool(client))
	// The keys spread over the masters: the client follows the slots.
	testTopology(t, client, cluster.Masters)
}

// TestClusterClientFencing locks with fencing through a Redis Cluster
// client: the counter lands in the lock key's hash slot, so a name with a
// hash tag, or with no braces at all, gets growing tokens; a name with a
// "}" but no hash tag cannot, and Lock says so at once.
func TestClusterClientFencing(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	rs := redsync.New(goredis.NewPool(client))
	t.Cleanup(rs.Wait) // before the client is closed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("TokensGrow", func(t *testing.T) {
		// The counter's key as WithFencing documents it.
		for _, tt := range []struct{ name, counter string }{
			{"{orders}:lock", "{orders}:lock:redsync:fence"},
			{"orders:lock", "{orders:lock}:redsync:fence"},
		} {
			name, counter := tt.name, tt.counter
			var last uint64
			for i := 0; i < 5; i++ {
				m := rs.NewMutex(name, redsync.WithFencing(true))
				require.NoError(t, m.LockContext(ctx), "Lock %s", name)
				require.Greater(t, m.Token(), last, "Lock %s", name)
				last = m.Token()
				ok, err := m.UnlockContext(ctx)
				require.True(t, ok, err)
			}
			stored, err := client.Get(ctx, counter).Uint64()
			require.NoError(t, err, "the counter of %s", name)
			assert.GreaterOrEqual(t, stored, last, "the counter of %s", name)
			slots := make([]int64, 2)
			for i, key := range []string{name, counter} {
				slots[i], err = client.ClusterKeySlot(ctx, key).Result()
				require.NoError(t, err)
			}
			assert.Equal(t, slots[0], slots[1], "%s and its counter share a slot", name)
		}
	})

	t.Run("BraceWithoutHashTagFailsAtOnce", func(t *testing.T) {
		const name = "a}b"
		retries := 0
		m := rs.NewMutex(name, redsync.WithFencing(true), redsync.WithRetryDelayFunc(func(int) time.Duration {
			retries++
			return 10 * time.Millisecond
		}))
		start := time.Now()
		err := m.LockContext(ctx)
		took := time.Since(start)
		require.ErrorIs(t, err, redsync.ErrInvalidArgument)
		var argErr *redsync.ArgumentError
		require.ErrorAs(t, err, &argErr)
		assert.Equal(t, "name", argErr.Arg)
		assert.Contains(t, err.Error(), "hash tag")
		assert.Zero(t, retries, "no try after the first: none could do better")
		assert.Less(t, took, time.Second)
		assert.Empty(t, m.Value())
		assert.Zero(t, m.Token())

		// Nothing is left locked: the name locks without fencing at once.
		rs.Wait()
		for _, key := range []string{name, "{a}b}:redsync:fence"} {
			n, err := client.Exists(ctx, key).Result()
			require.NoError(t, err)
			assert.Zero(t, n, "%s is on the cluster", key)
		}
		plain := rs.NewMutex(name, redsync.WithTries(1))
		require.NoError(t, plain.LockContext(ctx))
		ok, err := plain.UnlockContext(ctx)
		require.True(t, ok, err)
	})
}

func TestFailoverClientLocks(t *testing.T) {
	sentinel := redistest.StartSentinel(t)
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    redistest.SentinelMaster,
		SentinelAddrs: []string{sentinel.Sentinel.Addr()},
	})
	t.Cleanup(func() { _ = client.Close() })
	assert.Implements(t, (*redsyncredis.Subscriber)(nil), goredis.NewPool(client))
	// Every key is on the master.
	testTopology(t, client, []*redistest.Server{sentinel.Master})
}

func TestRingLocks(t *testing.T) {
	servers := redistest.Start(t, 3)
	addrs := map[string]string{}
	for i, s := range servers {
		addrs[fmt.Sprint("shard", i)] = s.Addr()
	}
	client := redis.NewRing(&redis.RingOptions{Addrs: addrs})
	t.Cleanup(func() { _ = client.Close() })
	// A Ring's pub/sub sits on one shard, while a release publishes on the
	// key's shard: its waiters poll.
	_, subscribes := goredis.NewPool(client).(redsyncredis.Subscriber)
	assert.False(t, subscribes, "a Ring pool must not be a redis.Subscriber")
	// Each key is on exactly one shard: one server per lock, not a quorum.
	testTopology(t, client, servers)
}

// testTopology locks, contends for, extends and unlocks locks through
// client, one pool. shards are the servers the keys may land on: while the
// locks are held, each must be on exactly one of them, and every shard must
// hold some.
func testTopology(t *testing.T, client redis.UniversalClient, shards []*redistest.Server) {
	const (
		locks  = 12
		expiry = 5 * time.Second
	)
	rs := redsync.New(goredis.NewPool(client))
	t.Cleanup(rs.Wait) // before the client is closed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	mutexes := make([]*redsync.Mutex, locks)
	for i := range mutexes {
		mutexes[i] = rs.NewMutex(fmt.Sprint("topology-lock-", i), redsync.WithExpiry(expiry))
		require.NoError(t, mutexes[i].LockContext(ctx), "Lock %s", mutexes[i].Name())
	}

	t.Run("EachLockIsOnOneShard", func(t *testing.T) {
		total := 0
		for i, s := range shards {
			keys, err := s.Client(t).Keys(ctx, "topology-lock-*").Result()
			require.NoError(t, err)
			assert.NotEmpty(t, keys, "shard %d holds none of the %d locks", i, locks)
			total += len(keys)
		}
		assert.Equal(t, locks, total, "every lock is on exactly one shard")
	})

	t.Run("TryLockOnHeldLockIsTaken", func(t *testing.T) {
		for _, m := range mutexes {
			err := rs.NewMutex(m.Name()).TryLockContext(ctx)
			var taken *redsync.ErrTaken
			require.ErrorAs(t, err, &taken, "TryLock %s", m.Name())
			assert.Equal(t, []int{0}, taken.Nodes)
		}
	})

	t.Run("ExtendPushesUntil", func(t *testing.T) {
		m := mutexes[0]
		before := m.Until()
		time.Sleep(5 * time.Millisecond)
		ok, err := m.ExtendContext(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		assert.True(t, m.Until().After(before), "Until %v, was %v", m.Until(), before)
		ttl, err := client.PTTL(ctx, m.Name()).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, expiry-time.Second)
	})

	t.Run("UnlockFreesTheLock", func(t *testing.T) {
		for _, m := range mutexes {
			ok, err := m.UnlockContext(ctx)
			require.NoError(t, err, "Unlock %s", m.Name())
			require.True(t, ok)
			other := rs.NewMutex(m.Name(), redsync.WithTries(1))
			require.NoError(t, other.TryLockContext(ctx), "TryLock %s after Unlock", m.Name())
			ok, err = other.UnlockContext(ctx)
			require.NoError(t, err)
			require.True(t, ok)
		}
	})

	t.Run("ContendersTakeTurns", func(t *testing.T) {
		const (
			contenders = 4
			rounds     = 3
		)
		var holders, maxHolders, acquired int32
		var wg sync.WaitGroup
		for g := 0; g < contenders; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					m := rs.NewMutex("topology-contended", redsync.WithExpiry(expiry),
						redsync.WithTries(1000), redsync.WithRetryDelay(5*time.Millisecond))
					if err := m.LockContext(ctx); err != nil {
						t.Errorf("Lock: %v", err)
						return
					}
					n := atomic.AddInt32(&holders, 1)
					for {
						seen := atomic.LoadInt32(&maxHolders)
						if n <= seen || atomic.CompareAndSwapInt32(&maxHolders, seen, n) {
							break
						}
					}
					time.Sleep(2 * time.Millisecond)
					atomic.AddInt32(&holders, -1)
					atomic.AddInt32(&acquired, 1)
					if ok, err := m.UnlockContext(ctx); !ok || err != nil {
						t.Errorf("Unlock: %v, %v", ok, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(contenders*rounds), acquired)
		assert.Equal(t, int32(1), maxHolders, "two contenders held the lock at once")
	})
}

// TestFailoverCanLoseALock shows why a primary with a replica counts as one
// server: the master acknowledges the lock and dies before the replica got
// it, the sentinel promotes the replica, and a second client takes the lock
// that the first still believes it holds.
func TestFailoverCanLoseALock(t *testing.T) {
	sentinel := redistest.StartSentinel(t)
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    redistest.SentinelMaster,
		SentinelAddrs: []string{sentinel.Sentinel.Addr()},
	})
	t.Cleanup(func() { _ = client.Close() })
	rs := redsync.New(goredis.NewPool(client))
	t.Cleanup(rs.Wait)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Cut the replica off for good (the master refuses it a resync), lock,
	// and kill the master: the key never reaches the replica.
	master := sentinel.Master.Client(t)
	require.NoError(t, master.Do(ctx, "acl", "setuser", "default", "-psync", "-sync").Err())
	require.NoError(t, master.Do(ctx, "client", "kill", "type", "replica").Err())
	first := rs.NewMutex("failover-lock", redsync.WithExpiry(30*time.Second))
	require.NoError(t, first.LockContext(ctx))
	sentinel.Master.Kill(t)

	// After the failover the lock is free, though first holds it for 30 s.
	second := rs.NewMutex("failover-lock", redsync.WithTries(1))
	if !assert.Eventually(t, func() bool {
		return second.TryLockContext(ctx) == nil
	}, 10*time.Second, 50*time.Millisecond, "the promoted replica never handed out the lock") {
		t.Fatalf("sentinel output:\n%s", sentinel.Sentinel.Output())
	}
	assert.True(t, time.Now().Before(first.Until()), "both hold the lock")
	info, err := client.Do(ctx, "info", "server").Text()
	require.NoError(t, err)
	assert.Contains(t, info, fmt.Sprintf("tcp_port:%d", sentinel.Replica.Port()), "the failover client now talks to the old replica")
}
