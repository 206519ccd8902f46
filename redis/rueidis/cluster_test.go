package rueidis_test

import (
	"testing"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/mutextest"
	"github.com/quorumlock/redsync/internal/redistest"
	adapter "github.com/quorumlock/redsync/redis/rueidis"
)

// TestFencingOnACluster: rueidis refuses (by a panic) a script on keys of
// two hash slots; the adapter makes it the Cluster's CROSSSLOT error, which
// Lock reports as a bad name, and a name with a hash tag works.
func TestFencingOnACluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: cluster.Addrs()})
	if err != nil {
		t.Fatalf("rueidis.NewClient: %v", err)
	}
	t.Cleanup(client.Close)
	rs := redsync.New(adapter.NewPool(rueidiscompat.NewAdapter(client)))
	t.Cleanup(rs.Wait)

	mutextest.FencingOnACluster(t, rs)
}
