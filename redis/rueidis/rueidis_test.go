package rueidis_test

import (
	"testing"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/adaptertest"
	"github.com/quorumlock/redsync/internal/mutextest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	adapter "github.com/quorumlock/redsync/redis/rueidis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newPool builds the client as a user would, with rueidis' defaults.
func newPool(t *testing.T, addr string) redsyncredis.Pool {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatalf("rueidis.NewClient(%s): %v", addr, err)
	}
	t.Cleanup(client.Close)
	return adapter.NewPool(rueidiscompat.NewAdapter(client))
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, newPool)
}

func TestMutex(t *testing.T) {
	mutextest.Run(t, mutextest.Adapter{Name: "rueidis", NewPool: newPool})
}
