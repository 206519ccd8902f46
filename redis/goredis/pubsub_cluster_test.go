package goredis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis/goredis"
)

// clusterBus returns, per master, the counters of the messages its
// cluster bus sent and received for pub/sub (CLUSTER INFO: a PUBLISH goes
// to every other node as a "publish" message, a SPUBLISH to the other
// nodes of the channel's shard only, as "publishshard").
func clusterBus(t *testing.T, cluster *redistest.Cluster) []map[string]int64 {
	t.Helper()
	stats := make([]map[string]int64, len(cluster.Masters))
	for i, s := range cluster.Masters {
		info, err := s.Client(t).ClusterInfo(context.Background()).Result()
		require.NoError(t, err)
		stats[i] = make(map[string]int64)
		for _, line := range strings.Split(info, "\n") {
			key, value, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || !strings.HasPrefix(key, "cluster_stats_messages_publish") {
				continue
			}
			n, err := strconv.ParseInt(value, 10, 64)
			require.NoError(t, err)
			stats[i][strings.TrimPrefix(key, "cluster_stats_messages_")] = n
		}
	}
	return stats
}

// listening returns how many connections the cluster's masters count as
// listening for releases of name, on the classic channel and the sharded
// one of a name without braces.
func listening(t *testing.T, cluster *redistest.Cluster, name string) int64 {
	t.Helper()
	ctx := context.Background()
	classic, sharded := "redsync:released:"+name, "redsync:released{"+name+"}"
	var n int64
	for _, s := range cluster.Masters {
		c := s.Client(t)
		got, err := c.PubSubNumSub(ctx, classic).Result()
		require.NoError(t, err)
		n += got[classic]
		got, err = c.PubSubShardNumSub(ctx, sharded).Result()
		require.NoError(t, err)
		n += got[sharded]
	}
	return n
}

// TestClusterClientReleasesStayOnTheirShard: waiters for locks whose keys
// spread over the three masters of a Redis Cluster are handed the lock,
// and woken, through the sharded channel of the lock key's slot: no
// release is sent over the cluster bus to the other masters, as a PUBLISH
// would be. Each round is two releases: the holder's, which hands the key
// over, and the waiter's.
//
//	go test -run ClusterClientReleasesStayOnTheirShard -v ./redis/goredis
func TestClusterClientReleasesStayOnTheirShard(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	rs := redsync.New(goredis.NewPool(client))
	t.Cleanup(rs.Wait) // before the client is closed
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const rounds = 10
	before := clusterBus(t, cluster)
	for i := 0; i < rounds; i++ {
		name := fmt.Sprintf("shard-lock-%d", i)
		holder := rs.NewMutex(name)
		require.NoError(t, holder.LockContext(ctx))
		// Only a release heard wakes the waiter before ctx ends.
		waiter := rs.NewMutex(name, redsync.WithRetryDelay(time.Hour), redsync.WithTries(3))
		done := make(chan error, 1)
		go func() { done <- waiter.LockContext(ctx) }()
		require.Eventually(t, func() bool { return listening(t, cluster, name) > 0 }, 10*time.Second, time.Millisecond)
		ok, err := holder.UnlockContext(ctx)
		require.True(t, ok, err)
		require.NoError(t, <-done, "the waiter is handed the lock")
		ok, err = waiter.UnlockContext(ctx)
		require.True(t, ok, err)
	}
	rs.Wait()
	after := clusterBus(t, cluster)
	var sent, shardSent int64
	for i := range after {
		delta := make(map[string]int64)
		for k, v := range after[i] {
			delta[k] = v - before[i][k]
		}
		t.Logf("master %d, %d releases: bus %v", i, 2*rounds, delta)
		sent += delta["publish_sent"]
		shardSent += delta["publishshard_sent"]
	}
	t.Logf("%d releases: publish_sent %d, publishshard_sent %d (all masters)", 2*rounds, sent, shardSent)
	assert.Zero(t, sent, "no release was broadcast over the cluster bus")
	assert.Zero(t, shardSent, "the shards have no replicas to tell")
}

// TestClusterClientWakesWaitersOfEveryKindOfName: on a Redis Cluster a
// waiter hears the release of a name with a hash tag (its sharded channel
// keeps the tag's slot) and of a name with a "}" but no tag (it has no
// sharded channel: its release is PUBLISHed, which every node hears), as
// well as of a plain name.
func TestClusterClientWakesWaitersOfEveryKindOfName(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	rs := redsync.New(goredis.NewPool(client))
	t.Cleanup(rs.Wait) // before the client is closed
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"plain", "{tag}:lock", "odd}name"} {
		t.Run(name, func(t *testing.T) {
			holder := rs.NewMutex(name)
			require.NoError(t, holder.LockContext(ctx))
			// Only a release heard wakes the waiter before ctx ends.
			waiter := rs.NewMutex(name, redsync.WithRetryDelay(time.Hour), redsync.WithTries(3))
			done := make(chan error, 1)
			go func() { done <- waiter.LockContext(ctx) }()
			require.Eventually(t, func() bool { return listeningAnyhow(t, cluster, name) }, 10*time.Second, time.Millisecond)
			ok, err := holder.UnlockContext(ctx)
			require.True(t, ok, err)
			require.NoError(t, <-done, "the waiter got the lock once it was released")
			ok, err = waiter.UnlockContext(ctx)
			require.True(t, ok, err)
		})
	}
}

// listeningAnyhow reports whether some master counts a listener for the
// releases of name, on any channel that may carry them.
func listeningAnyhow(t *testing.T, cluster *redistest.Cluster, name string) bool {
	t.Helper()
	ctx := context.Background()
	channels := []string{"redsync:released:" + name, "redsync:released{" + name + "}"}
	for _, s := range cluster.Masters {
		c := s.Client(t)
		classic, err := c.PubSubNumSub(ctx, channels...).Result()
		require.NoError(t, err)
		sharded, err := c.PubSubShardNumSub(ctx, channels...).Result()
		require.NoError(t, err)
		for _, ch := range channels {
			if classic[ch]+sharded[ch] > 0 {
				return true
			}
		}
	}
	return false
}
