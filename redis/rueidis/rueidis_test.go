package rueidis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/adaptertest"
	"github.com/quorumlock/redsync/internal/mutextest"
	"github.com/quorumlock/redsync/internal/primtest"
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
	warmUp(t, client)
	return adapter.NewPool(rueidiscompat.NewAdapter(client))
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, newPool)
}

func TestMutex(t *testing.T) {
	mutextest.Run(t, mutextest.Adapter{Name: "rueidis", NewPool: newPool})
}

func TestPrimitives(t *testing.T) {
	primtest.Run(t, primtest.Adapter{Name: "rueidis", NewPool: newPool})
}

// warmUp sends enough commands through client that all its connections
// are dialled. rueidis keeps several pipelined connections per server (4 at
// most by default) and dials all but the first lazily, at the first command
// it routes to each, at random. Such a dial (with its handshake) takes a
// few milliseconds under -race, about the 5 ms per-server deadline that the
// behaviour suite's 100 ms expiries allow, so a cold connection made a
// server miss its deadline in about one run in ten. Users' expiries (8 s by
// default: 400 ms per server) leave plenty of room.
func warmUp(t *testing.T, client rueidis.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// (3/4)^64 < 1e-7 is the chance that a given connection stays cold.
	for i := 0; i < 64; i++ {
		if err := client.Do(ctx, client.B().Get().Key("warm-up").Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("warm-up: %v", err)
		}
	}
}

// TestANilClientIsAnArgumentError: NewPool of a nil client gives a nil
// Pool, which the first operation reports (it used to panic on a library
// goroutine, crashing the process).
func TestANilClientIsAnArgumentError(t *testing.T) {
	if pool := adapter.NewPool(nil); pool != nil {
		t.Fatalf("NewPool(nil) = %#v, want nil", pool)
	}
	err := redsync.New(adapter.NewPool(nil)).NewMutex("nil-client").Lock()
	var argErr *redsync.ArgumentError
	if !errors.As(err, &argErr) || argErr.Arg != "pools" {
		t.Fatalf("Lock = %v, want an *ArgumentError about the pools", err)
	}
}
