package redsync

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	goredisv7 "github.com/go-redis/redis/v7"
	goredisv8 "github.com/go-redis/redis/v8"
	redigolib "github.com/gomodule/redigo/redis"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/fakepool"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	goredisadapterv7 "github.com/quorumlock/redsync/redis/goredis/v7"
	goredisadapterv8 "github.com/quorumlock/redsync/redis/goredis/v8"
	"github.com/quorumlock/redsync/redis/redigo"
)

// checkClient returns a go-redis client of addr that gives up at once on
// a server that does not answer, closed when the test ends.
func checkClient(t *testing.T, opts goredislib.Options) *goredislib.Client {
	t.Helper()
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DisableIdentity = true
	opts.DialerRetries = 1
	client := goredislib.NewClient(&opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// checkPool returns a goredis Pool of the server at addr.
func checkPool(t *testing.T, addr string) redis.Pool {
	return goredis.NewPool(checkClient(t, goredislib.Options{Addr: addr}))
}

// runCheck runs Check on pools and waits for its requests when the test
// ends.
func runCheck(t *testing.T, pools []redis.Pool, options ...Option) *Report {
	t.Helper()
	rs := New(pools...)
	t.Cleanup(rs.Wait)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	report, err := rs.Check(ctx, options...)
	require.NoError(t, err)
	require.Len(t, report.Servers, len(pools))
	t.Logf("report:\n%s", report)
	return report
}

// kinds returns the kinds of a server's findings.
func kinds(s ServerReport) []FindingKind {
	var k []FindingKind
	for _, f := range s.Findings {
		k = append(k, f.Kind)
	}
	return k
}

// findingOf returns the server's finding of kind, or nil.
func findingOf(s ServerReport, kind FindingKind) *Finding {
	for i := range s.Findings {
		if s.Findings[i].Kind == kind {
			return &s.Findings[i]
		}
	}
	return nil
}

// durable are the options of a server that breaks no assumption.
var durable = []string{"--appendonly", "yes"}

func TestCheckFindsNothingWrongWithADurableServer(t *testing.T) {
	servers := redistest.StartWithArgs(t, 3, durable...)
	var pools []redis.Pool
	for _, s := range servers {
		pools = append(pools, checkPool(t, s.Addr()))
	}
	report := runCheck(t, pools)
	require.NoError(t, report.Err())
	for i, s := range report.Servers {
		assert.Equal(t, i, s.Node)
		assert.Empty(t, s.Findings)
		assert.Len(t, s.RunID, 40)
		assert.Regexp(t, `^\d+\.\d+\.\d+$`, s.Version)
		assert.Equal(t, "master", s.Role)
		assert.Greater(t, s.RTT, time.Duration(0))
		assert.Less(t, s.ClockOffset.Abs(), time.Second, "one host, one clock")
		n, err := servers[i].Client(t).DBSize(context.Background()).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "Check must not write a key")
	}
	assert.Contains(t, report.String(), "ok")
}

func TestCheckFindsEvictingMemoryPolicies(t *testing.T) {
	tests := []struct {
		policy   string
		evicting bool
		says     string
	}{
		{"allkeys-lru", true, "evicts any key"},
		{"allkeys-random", true, "evicts any key"},
		{"volatile-ttl", true, "shortest-lived first"},
		{"volatile-lru", true, "as every lock key has"},
		{"noeviction", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			args := append([]string{"--maxmemory", "10mb", "--maxmemory-policy", tt.policy}, durable...)
			s := redistest.StartWithArgs(t, 1, args...)[0]
			report := runCheck(t, []redis.Pool{checkPool(t, s.Addr())})
			if !tt.evicting {
				assert.NoError(t, report.Err())
				return
			}
			require.Equal(t, []FindingKind{FindingEviction}, kinds(report.Servers[0]))
			f := report.Servers[0].Findings[0]
			assert.Contains(t, f.Detail, tt.policy)
			assert.Contains(t, f.Detail, "10.00M")
			assert.Contains(t, f.Detail, tt.says)
			assert.False(t, f.Kind.Warning())
			assert.Error(t, report.Err(FindingEviction), "a problem cannot be acknowledged")
		})
	}
}

func TestCheckWarnsOfAServerWithoutPersistence(t *testing.T) {
	tests := []struct {
		desc string
		args []string
		says string
	}{
		{"neither AOF nor RDB", nil, `no RDB snapshot is configured (save "")`},
		{"RDB only", []string{"--save", "3600 1"}, `RDB snapshots only, save "3600 1"`},
		// Without CONFIG, INFO tells appendonly but not save.
		{"CONFIG renamed", []string{"--rename-command", "CONFIG", "config-renamed"}, "since its last RDB snapshot (or all, without snapshots)"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := redistest.StartWithArgs(t, 1, tt.args...)[0]
			report := runCheck(t, []redis.Pool{checkPool(t, s.Addr())})
			require.Equal(t, []FindingKind{FindingNoPersistence}, kinds(report.Servers[0]))
			f := report.Servers[0].Findings[0]
			assert.Contains(t, f.Detail, tt.says)
			assert.Contains(t, f.Detail, "restart rule")
			assert.True(t, f.Kind.Warning())

			err := report.Err()
			var found Finding
			require.True(t, errors.As(err, &found))
			assert.Equal(t, FindingNoPersistence, found.Kind)
			assert.Contains(t, err.Error(), "node #0: no-persistence (warning): ")
			assert.NoError(t, report.Err(FindingNoPersistence), "a warning can be acknowledged")
		})
	}
}

func TestCheckFindsEvictionWhereCONFIGIsRenamed(t *testing.T) {
	s := redistest.StartWithArgs(t, 1, "--rename-command", "CONFIG", "config-renamed",
		"--maxmemory", "10mb", "--maxmemory-policy", "volatile-ttl", "--appendonly", "yes")[0]
	report := runCheck(t, []redis.Pool{checkPool(t, s.Addr())})
	assert.Equal(t, []FindingKind{FindingEviction}, kinds(report.Servers[0]))
}

func TestCheckReportsAServerThatRefusesTheClient(t *testing.T) {
	withUser := func(rules ...string) []string {
		return append(append([]string{"--user", "alice", "on", ">pw", "~*", "&*"}, rules...), durable...)
	}
	// redistest's readiness probe needs no password: the tests that want
	// one set it once the server runs.
	password := []string{"CONFIG", "SET", "requirepass", "s3cret"}
	tests := []struct {
		desc     string
		args     []string
		set      []string // a command run once the server is up
		opts     goredislib.Options
		want     []FindingKind
		says     string
		checked  bool // the clock was read
		evalHint bool
	}{
		{"no password", durable, password, goredislib.Options{},
			[]FindingKind{FindingRefused}, "the server refused INFO (NOAUTH Authentication required): give the client", false, false},
		{"wrong password", durable, password, goredislib.Options{Password: "wrong"},
			[]FindingKind{FindingRefused}, "WRONGPASS", false, false},
		{"EVAL not allowed", withUser("+@all", "-eval"), nil, goredislib.Options{Username: "alice", Password: "pw"},
			[]FindingKind{FindingRefused}, "the server refused EVAL (NOPERM", true, true},
		{"EVALSHA not allowed", withUser("+@all", "-evalsha"), nil, goredislib.Options{Username: "alice", Password: "pw"},
			[]FindingKind{FindingRefused}, "the server refused EVALSHA (NOPERM", true, true},
		{"INFO not allowed", withUser("+@all", "-info"), nil, goredislib.Options{Username: "alice", Password: "pw"},
			[]FindingKind{FindingUnverified}, "the server refused INFO (NOPERM", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := redistest.StartWithArgs(t, 1, tt.args...)[0]
			if tt.set != nil {
				args := make([]any, len(tt.set))
				for i, arg := range tt.set {
					args[i] = arg
				}
				require.NoError(t, s.Client(t).Do(context.Background(), args...).Err())
			}
			opts := tt.opts
			opts.Addr = s.Addr()
			report := runCheck(t, []redis.Pool{goredis.NewPool(checkClient(t, opts))})
			server := report.Servers[0]
			require.Equal(t, tt.want, kinds(server))
			assert.Contains(t, server.Findings[0].Detail, tt.says)
			if tt.evalHint {
				assert.Contains(t, server.Findings[0].Detail, "the ACL user needs EVAL, EVALSHA")
			}
			assert.Equal(t, tt.checked, server.RTT > 0, "clock read")
		})
	}
}

func TestCheckFindsTwoPoolsOnOneServer(t *testing.T) {
	servers := redistest.StartWithArgs(t, 2, durable...)
	pools := []redis.Pool{checkPool(t, servers[0].Addr()), checkPool(t, servers[1].Addr()), checkPool(t, servers[0].Addr())}
	report := runCheck(t, pools)
	assert.Empty(t, report.Servers[0].Findings)
	assert.Empty(t, report.Servers[1].Findings)
	require.Equal(t, []FindingKind{FindingSameServer}, kinds(report.Servers[2]))
	assert.Contains(t, report.Servers[2].Findings[0].Detail, "the same server as node #0 (run_id "+report.Servers[0].RunID+")")
	assert.Equal(t, 2, report.Servers[2].Findings[0].Node)
}

// TestCheckAsksThroughEveryAdapter checks one server through every adapter
// of this module: each finds the eviction, and all but the first reach the
// same server as the first.
func TestCheckAsksThroughEveryAdapter(t *testing.T) {
	s := redistest.StartWithArgs(t, 1, "--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru", "--save", "60 1")[0]
	v7 := goredisv7.NewClient(&goredisv7.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = v7.Close() })
	v8 := goredisv8.NewClient(&goredisv8.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = v8.Close() })
	rg := &redigolib.Pool{Dial: func() (redigolib.Conn, error) { return redigolib.Dial("tcp", s.Addr()) }}
	t.Cleanup(func() { _ = rg.Close() })
	pools := []redis.Pool{
		checkPool(t, s.Addr()),
		goredisadapterv7.NewPool(v7),
		goredisadapterv8.NewPool(v8),
		redigo.NewPool(rg),
		fakepool.New(checkPool(t, s.Addr())),
	}
	report := runCheck(t, pools)
	for i, server := range report.Servers {
		want := []FindingKind{FindingEviction, FindingNoPersistence}
		if i > 0 {
			want = []FindingKind{FindingSameServer, FindingEviction, FindingNoPersistence}
		}
		assert.Equal(t, want, kinds(server), "node %d", i)
		assert.Equal(t, report.Servers[0].RunID, server.RunID, "node %d", i)
		assert.Greater(t, server.RTT, time.Duration(0), "node %d", i)
	}
	save := `RDB snapshots only, save "60 1"`
	for i, server := range report.Servers {
		persistence := server.Findings[len(server.Findings)-1].Detail
		if i < 4 {
			assert.Contains(t, persistence, save, "node %d asks CONFIG", i)
		} else {
			assert.NotContains(t, persistence, save, "a Pool of the user's own cannot ask CONFIG")
		}
	}
}

func TestCheckFindsReplicasAndFailovers(t *testing.T) {
	sentinel := redistest.StartSentinel(t)
	failover := goredislib.NewFailoverClient(&goredislib.FailoverOptions{
		MasterName: redistest.SentinelMaster, SentinelAddrs: []string{sentinel.Sentinel.Addr()},
		MaxRetries: -1, ContextTimeoutEnabled: true, DisableIdentity: true,
	})
	t.Cleanup(func() { _ = failover.Close() })
	pools := []redis.Pool{
		goredis.NewPool(failover),
		checkPool(t, sentinel.Replica.Addr()),
		checkPool(t, sentinel.Sentinel.Addr()),
	}
	report := runCheck(t, pools)
	assert.Equal(t, []FindingKind{FindingFailover, FindingNoPersistence}, kinds(report.Servers[0]))
	assert.Contains(t, report.Servers[0].Findings[0].Detail, "the server has 1 replica(s)")
	assert.Equal(t, []FindingKind{FindingReplica, FindingNoPersistence}, kinds(report.Servers[1]))
	assert.Contains(t, report.Servers[1].Findings[0].Detail, "a replica of 127.0.0.1:"+sentinel.Master.Addr()[len("127.0.0.1:"):])
	assert.Equal(t, "slave", report.Servers[1].Role)
	assert.Equal(t, []FindingKind{FindingRefused}, kinds(report.Servers[2]))
	assert.Contains(t, report.Servers[2].Findings[0].Detail, "a Sentinel")
}

func TestCheckWarnsOfAClusterCountedAsOneServer(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := goredislib.NewClusterClient(&goredislib.ClusterOptions{
		Addrs: cluster.Addrs(), MaxRedirects: 3, ContextTimeoutEnabled: true, DisableIdentity: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	report := runCheck(t, []redis.Pool{goredis.NewPool(client)})
	assert.Equal(t, []FindingKind{FindingFailover, FindingNoPersistence}, kinds(report.Servers[0]))
	assert.Contains(t, report.Servers[0].Findings[0].Detail, "Redis Cluster node")
	assert.NoError(t, report.Err(FindingFailover, FindingNoPersistence), "warnings, which a program can acknowledge")
}

func TestCheckReportsServersThatDoNotAnswer(t *testing.T) {
	servers := redistest.StartWithArgs(t, 3, durable...)
	servers[1].Kill(t)
	servers[2].Pause(t)
	var pools []redis.Pool
	for _, s := range servers {
		pools = append(pools, checkPool(t, s.Addr()))
	}
	rs := New(pools...)
	defer rs.Wait()
	defer servers[2].Resume(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	report, err := rs.Check(ctx)
	require.NoError(t, err)
	t.Logf("report:\n%s", report)
	assert.Empty(t, report.Servers[0].Findings)
	for _, node := range []int{1, 2} {
		require.Equal(t, []FindingKind{FindingUnreachable}, kinds(report.Servers[node]), "node %d", node)
		assert.Error(t, report.Servers[node].Findings[0].Err)
	}
	assert.Contains(t, report.Servers[1].Findings[0].Detail, "connection refused")
	// go-redis reports a socket deadline as a net timeout error.
	paused := report.Servers[2].Findings[0]
	assert.True(t, errors.Is(paused, context.DeadlineExceeded) || errors.Is(paused, os.ErrDeadlineExceeded), "the paused server: %v", paused)
}

func TestCheckFindsClocksApartByMoreThanTheDriftAllowance(t *testing.T) {
	s := redistest.StartWithArgs(t, 1, durable...)[0]
	pools := []redis.Pool{checkPool(t, s.Addr()), fakepool.New(checkPool(t, s.Addr()))}
	tests := []struct {
		desc  string
		shift time.Duration // of this host's clock
		opts  []Option
		says  string
	}{
		// (The "at least" figure is the offset less the round trip, so
		// it is not matched: a slow round trip makes it 1.998s.)
		{"server ahead", -time.Second, nil, "ahead of this host's, more than the drift allowance of 80ms"},
		{"server behind", 2 * time.Second, nil, "behind this host's"},
		{"allowance of the options", -time.Second, []Option{WithExpiry(10 * time.Second), WithDriftFactor(0.05)}, "allowance of 500ms"},
		{"within the allowance", -time.Second, []Option{WithExpiry(2 * time.Minute)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			checkNow = func() time.Time { return time.Now().Add(tt.shift) }
			defer func() { checkNow = time.Now }()
			report := runCheck(t, pools, tt.opts...)
			for _, server := range report.Servers {
				assert.InDelta(t, float64(-tt.shift), float64(server.ClockOffset), float64(50*time.Millisecond))
				if tt.says == "" {
					assert.NotContains(t, kinds(server), FindingClockSkew)
					continue
				}
				skew := findingOf(server, FindingClockSkew)
				require.NotNil(t, skew)
				assert.Contains(t, skew.Detail, tt.says)
			}
		})
	}
}

// versionPool is a pool over inner (with redis.Doer, without
// redis.Subscriber) that reports the server's version as version in INFO.
func versionPool(inner redis.Pool, version string) redis.Pool {
	return fakepool.New(inner, fakepool.WithDoer()).On(fakepool.Do, func(c *fakepool.Call, send fakepool.Send) (any, error) {
		reply, err := send()
		if text, ok := reply.(string); ok && c.Args[0] == "INFO" {
			start := strings.Index(text, "redis_version:") + len("redis_version:")
			end := start + strings.Index(text[start:], "\r\n")
			reply = text[:start] + version + text[end:]
		}
		return reply, err
	})
}

// TestCheckFindsServersTooOldForTheScripts runs on a real server that
// claims an old version: redis-server 7 is the one installed.
func TestCheckFindsServersTooOldForTheScripts(t *testing.T) {
	s := redistest.StartWithArgs(t, 1, durable...)[0]
	tests := []struct {
		version string
		opts    []Option
		says    string
	}{
		{"2.6.0", []Option{WithHandoff(false)}, "older than 2.6.12, which every lock"},
		{"3.0.7", nil, "older than 3.2.0, which the hand-over of WithHandoff"},
		{"3.0.7", []Option{WithHandoff(false)}, ""},
		{"3.0.7", []Option{WithHandoff(false), WithFencing(true)}, "older than 3.2.0, which WithFencing on a single server"},
		{"3.2.0", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.version+tt.says, func(t *testing.T) {
			report := runCheck(t, []redis.Pool{versionPool(checkPool(t, s.Addr()), tt.version)}, tt.opts...)
			server := report.Servers[0]
			assert.Equal(t, tt.version, server.Version)
			if tt.says == "" {
				assert.Empty(t, server.Findings)
				return
			}
			require.Equal(t, []FindingKind{FindingOldVersion}, kinds(server))
			assert.Contains(t, server.Findings[0].Detail, tt.says)
		})
	}
}

func TestCheckCannotVerifyWhatMiniredisDoesNotTell(t *testing.T) {
	_, pools := miniPools(t, 1)
	report := runCheck(t, pools)
	require.Equal(t, []FindingKind{FindingUnverified}, kinds(report.Servers[0]))
	assert.Contains(t, report.Servers[0].Findings[0].Detail, "the INFO reply has no run_id, redis_version, role, maxmemory, maxmemory_policy, aof_enabled")
	assert.Greater(t, report.Servers[0].RTT, time.Duration(0), "miniredis tells the time")
}

func TestCheckRejectsBadArguments(t *testing.T) {
	_, pools := miniPools(t, 1)
	tests := []struct {
		desc  string
		pools []redis.Pool
		ctx   context.Context
		opts  []Option
		arg   string
	}{
		{"no pools", nil, context.Background(), nil, "pools"},
		{"nil pool", []redis.Pool{pools[0], nil}, context.Background(), nil, "pools"},
		{"nil ctx", pools, nil, nil, "ctx"},
		{"bad option", pools, context.Background(), []Option{WithDriftFactor(2)}, "WithDriftFactor"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			report, err := New(tt.pools...).Check(tt.ctx, tt.opts...)
			assert.Nil(t, report)
			var argErr *ArgumentError
			require.True(t, errors.As(err, &argErr), "%v", err)
			assert.Equal(t, tt.arg, argErr.Arg)
		})
	}
}

func TestCheckRecoversFromAPanickingPool(t *testing.T) {
	report := runCheck(t, []redis.Pool{panickingPool{}})
	require.Equal(t, []FindingKind{FindingUnreachable}, kinds(report.Servers[0]))
	assert.Contains(t, report.Servers[0].Findings[0].Detail, "the pool panicked: boom")
}

type panickingPool struct{}

func (panickingPool) Get(context.Context) (redis.Conn, error) { panic("boom") }

func TestReportTableHasALinePerFinding(t *testing.T) {
	report := &Report{Servers: []ServerReport{
		{Node: 0, RunID: "0123456789abcdef", Version: "7.0.15", Role: "master", ClockOffset: 150 * time.Microsecond, RTT: 300 * time.Microsecond},
		{Node: 1, RunID: "0123456789abcdef", Version: "7.0.15", Role: "master", ClockOffset: -2 * time.Millisecond, RTT: time.Millisecond},
		{Node: 2},
	}}
	report.Servers[1].add(FindingNoPersistence, nil, "appendonly is off")
	report.Servers[2].add(FindingUnreachable, nil, "the pool gave no connection")
	report.finish()
	want := `NODE  VERSION  ROLE    RUN ID    CLOCK         LEVEL    FINDING
#0    7.0.15   master  01234567  +150µs/300µs  -        ok
#1    7.0.15   master  01234567  -2ms/1ms      problem  same-server: the pool reaches the same server as node #0 (run_id 0123456789abcdef): one server counts as two of the quorum's votes; give each pool a server of its own
#1    7.0.15   master  01234567  -2ms/1ms      warning  no-persistence: appendonly is off
#2    -        -       -         -             problem  unreachable: the pool gave no connection
`
	assert.Equal(t, want, report.String())
}
