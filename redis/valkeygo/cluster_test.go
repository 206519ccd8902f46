package valkeygo_test

import (
	"errors"
	"testing"

	"github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeycompat"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	adapter "github.com/quorumlock/redsync/redis/valkeygo"
)

// TestFencingOnACluster: valkey-go refuses (by a panic) a script on keys of
// two hash slots; the adapter makes it the Cluster's CROSSSLOT error, which
// Lock reports as a bad name, and a name with a hash tag works.
func TestFencingOnACluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: cluster.Addrs()})
	if err != nil {
		t.Fatalf("valkey.NewClient: %v", err)
	}
	t.Cleanup(client.Close)
	rs := redsync.New(adapter.NewPool(valkeycompat.NewAdapter(client)))
	t.Cleanup(rs.Wait)

	m := rs.NewMutex("a}b", redsync.WithFencing(true))
	if err := m.Lock(); !errors.Is(err, redsync.ErrInvalidArgument) {
		t.Fatalf("Lock of a name without a hash tag that has a \"}\": %v, want an ArgumentError", err)
	}
	var last uint64
	for i := 0; i < 3; i++ {
		m := rs.NewMutex("{orders}:lock", redsync.WithFencing(true))
		if err := m.Lock(); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if m.Token() <= last {
			t.Fatalf("token %d after %d", m.Token(), last)
		}
		last = m.Token()
		if _, err := m.Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	}
}
