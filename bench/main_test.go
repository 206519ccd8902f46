package bench

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
)

func TestMain(m *testing.M) {
	// The fleet scenarios start this test binary again as their workers.
	RunWorkerIfAsked()
	// go-redis logs to standard output, where a line in the middle of a
	// benchmark's result makes it unreadable to benchstat (it logs when
	// a closed client's pooled connections are dropped).
	redis.SetLogger(discardLogger{})
	// go-redis may still be dialing a connection in the background when a
	// client is closed; that goroutine ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...interface{}) {}

// testFleet starts n servers for t (see redistest.Start: skipped without
// redis-server unless REDSYNC_REQUIRE_REDIS=1) and stops them in cleanup.
func testFleet(t testing.TB, n int) *fleet {
	t.Helper()
	servers := redistest.Start(t, n)
	f := &fleet{servers: servers, stop: func() {}}
	for _, s := range servers {
		f.inspect = append(f.inspect, s.Client(t))
	}
	return f
}

// requireRedis skips t when redis-server is missing, or fails it when
// REDSYNC_REQUIRE_REDIS=1, like redistest.Start, for tests that start
// their servers through Run.
func requireRedis(t *testing.T) {
	t.Helper()
	if redistest.Available() {
		return
	}
	if os.Getenv(redistest.EnvRequire) == "1" {
		t.Fatalf("redis-server not found (%s=1 is set, so this is an error)", redistest.EnvRequire)
	}
	t.Skipf("redis-server not found: install it with `apt-get install -y redis-server` (set %s=1 to make this an error)", redistest.EnvRequire)
}
