package redsync_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// The environment that makes TestFencingHelperProcess a holder in
// TestFencingTokensGrowAcrossProcesses.
const (
	envFencingServers = "REDSYNC_FENCING_HELPER_SERVERS" // the servers' addresses, comma-separated
	envFencingLog     = "REDSYNC_FENCING_HELPER_LOG"     // the file every holder appends its tokens to
	envFencingHolder  = "REDSYNC_FENCING_HELPER_HOLDER"  // the holder's number, written beside its tokens
)

const (
	fencingProcesses    = 3
	fencingLocksPerProc = 15
	fencingSharedName   = "fencing-across-processes"
)

// TestFencingTokensGrowAcrossProcesses runs holders in several processes
// (this test binary again, as TestFencingHelperProcess), each locking one
// name over the same servers again and again and appending its token to a
// shared file while it holds the lock. The file is then in hold order, so
// its tokens must grow line after line.
func TestFencingTokensGrowAcrossProcesses(t *testing.T) {
	servers := redistest.Start(t, 3)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "tokens")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The servers share this machine's clock, which alone would order the
	// tokens. Counters far ahead of it make the holders depend on the
	// counters they read and write back. (The counter's key, as
	// WithFencing documents it for a name without a hash tag.)
	ahead := uint64(time.Now().Add(1000 * time.Hour).UnixMicro())
	for _, s := range servers {
		err := s.Client(t).Set(ctx, "{"+fencingSharedName+"}:redsync:fence", ahead, time.Hour).Err()
		require.NoError(t, err)
	}

	// Every holder started is waited for, also when the test fails, so
	// that no process (nor goroutine of exec) outlives the test.
	cmds := make([]*exec.Cmd, fencingProcesses)
	outputs := make([]string, fencingProcesses)
	for i := range cmds {
		outputs[i] = filepath.Join(dir, fmt.Sprintf("holder-%d.out", i))
		cmd, err := startFencingHolder(ctx, i, redistest.Addrs(servers), logPath, outputs[i])
		if err != nil {
			t.Errorf("holder %d: %v", i, err)
			break
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		if err := cmd.Wait(); err != nil {
			out, _ := os.ReadFile(outputs[i])
			t.Errorf("holder %d: %v; its output:\n%s", i, err, out)
		}
	}
	if t.Failed() {
		return
	}

	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Len(t, lines, fencingProcesses*fencingLocksPerProc, "one line per holding:\n%s", data)
	var (
		last     = ahead
		holds    = make(map[int]int) // holder -> holdings seen so far
		switches int                 // lines whose holder differs from the line before's
		previous = -1
	)
	for n, line := range lines {
		var token uint64
		var holder, hold int
		_, err := fmt.Sscanf(line, "%d %d %d", &token, &holder, &hold)
		require.NoError(t, err, "line %d: %q", n+1, line)
		require.Greater(t, token, last, "line %d (holder %d, holding %d) after a token of %d:\n%s", n+1, holder, hold, last, data)
		assert.Equal(t, holds[holder], hold, "line %d: holder %d's holdings out of order", n+1, holder)
		holds[holder]++
		if holder != previous && previous >= 0 {
			switches++
		}
		last, previous = token, holder
	}
	for i := 0; i < fencingProcesses; i++ {
		assert.Equal(t, fencingLocksPerProc, holds[i], "holdings of holder %d", i)
	}
	// Otherwise the processes took turns only once each, and the test
	// showed little.
	assert.Greater(t, switches, fencingProcesses, "the lock rarely passed between processes:\n%s", data)
	t.Logf("the lock passed between processes %d times in %d holdings", switches, len(lines))
}

// startFencingHolder starts holder number i of
// TestFencingTokensGrowAcrossProcesses, its output going to the file
// outPath.
func startFencingHolder(ctx context.Context, i int, addrs []string, logPath, outPath string) (*exec.Cmd, error) {
	// A file, not a buffer, for the output: exec then copies nothing in
	// goroutines of this process.
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFencingHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		envFencingServers+"="+strings.Join(addrs, ","),
		envFencingLog+"="+logPath,
		envFencingHolder+"="+strconv.Itoa(i),
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// TestFencingHelperProcess is one holder of
// TestFencingTokensGrowAcrossProcesses, which runs it in a process of its
// own; on its own it skips.
func TestFencingHelperProcess(t *testing.T) {
	addrs := os.Getenv(envFencingServers)
	if addrs == "" {
		t.Skip("a holder process of TestFencingTokensGrowAcrossProcesses; skipped when run on its own")
	}
	holder := os.Getenv(envFencingHolder)
	var (
		clients []*goredislib.Client
		pools   []redis.Pool
	)
	for _, addr := range strings.Split(addrs, ",") {
		client := goredislib.NewClient(&goredislib.Options{Addr: addr})
		t.Cleanup(func() { _ = client.Close() })
		clients = append(clients, client)
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	t.Cleanup(rs.Wait) // before the clients close, as cleanups run last first

	log, err := os.OpenFile(os.Getenv(envFencingLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer log.Close()

	// The holders start together, so that they contend: a process that
	// starts late could otherwise find the others done.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready := fencingSharedName + ":ready"
	require.NoError(t, clients[0].Incr(ctx, ready).Err())
	for {
		n, err := clients[0].Get(ctx, ready).Int()
		require.NoError(t, err)
		if n >= fencingProcesses {
			break
		}
		time.Sleep(time.Millisecond)
	}

	for i := 0; i < fencingLocksPerProc; i++ {
		m := rs.NewMutex(fencingSharedName, redsync.WithFencing(true),
			redsync.WithTries(2000), redsync.WithRetryDelay(5*time.Millisecond))
		require.NoError(t, m.LockContext(ctx))
		// One write(2) of a whole line, with O_APPEND, while the lock is
		// held: the lines are in hold order.
		_, err := fmt.Fprintf(log, "%d %s %d\n", m.Token(), holder, i)
		require.NoError(t, err)
		time.Sleep(time.Millisecond) // the others queue up meanwhile
		ok, err := m.UnlockContext(ctx)
		require.True(t, ok, err)
	}
}
