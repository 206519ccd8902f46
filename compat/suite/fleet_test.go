package suite

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/redistest"
)

// opTimeout bounds every command the tests send themselves, and every wait
// for something the library must do, so that a hang fails the test.
const opTimeout = 10 * time.Second

// fleet is n real servers with a Redsync over them: one go-redis v9 client
// per server for the library's pools, and one per server for the test to
// look at the servers behind the library's back.
type fleet struct {
	servers []*redistest.Server
	clients []*goredislib.Client
	raw     []*goredislib.Client
	pools   []redis.Pool
	rs      *redsync.Redsync
	config  fleetConfig
}

// fleetConfig is what the fleet options change.
type fleetConfig struct {
	// clientOptions adjusts the options of the library's clients.
	clientOptions func(*goredislib.Options)
	// pool makes the pool of one client; goredis.NewPool by default.
	pool func(goredislib.UniversalClient) redis.Pool
}

// goredisNewPool is the go-redis v9 adapter's constructor, as a value of
// redsync's type.
var goredisNewPool func(goredislib.UniversalClient) redis.Pool = goredis.NewPool

// A fleetOption changes how newFleet builds the library's side.
type fleetOption func(*fleetConfig)

// withClientOptions adjusts the options of the clients behind the pools.
func withClientOptions(f func(*goredislib.Options)) fleetOption {
	return func(c *fleetConfig) { c.clientOptions = f }
}

// withPool makes the pools with newPool.
func withPool(newPool func(goredislib.UniversalClient) redis.Pool) fleetOption {
	return func(c *fleetConfig) { c.pool = newPool }
}

// newFleet starts n servers and a Redsync over them; everything is stopped
// when the test ends.
func newFleet(t *testing.T, n int, opts ...fleetOption) *fleet {
	t.Helper()
	f := &fleet{servers: redistest.Start(t, n), config: fleetConfig{pool: goredisNewPool}}
	for _, opt := range opts {
		opt(&f.config)
	}
	for _, s := range f.servers {
		raw := s.NewClient()
		t.Cleanup(func() { _ = raw.Close() })
		f.raw = append(f.raw, raw)
	}
	f.rs, f.clients, f.pools = f.process(t)
	return f
}

// process is another Redsync over the fleet's servers, with clients of its
// own, as another process would have.
func (f *fleet) process(t *testing.T) (*redsync.Redsync, []*goredislib.Client, []redis.Pool) {
	t.Helper()
	clients := make([]*goredislib.Client, len(f.servers))
	pools := make([]redis.Pool, len(f.servers))
	for i, s := range f.servers {
		opts := &goredislib.Options{Addr: s.Addr()}
		if f.config.clientOptions != nil {
			f.config.clientOptions(opts)
		}
		clients[i] = goredislib.NewClient(opts)
		pools[i] = f.config.pool(clients[i])
	}
	rs := redsync.New(pools...)
	t.Cleanup(func() {
		settle(rs)
		for _, c := range clients {
			_ = c.Close()
		}
	})
	return rs, clients, pools
}

// ctx is a context for the test's own commands.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return c
}

// value returns the key name on server i, and whether it exists (never on
// a server that was killed).
func (f *fleet) value(t *testing.T, i int, name string) (string, bool) {
	t.Helper()
	if !f.servers[i].Running() {
		return "", false
	}
	v, err := f.raw[i].Get(ctx(t), name).Result()
	if err == goredislib.Nil {
		return "", false
	}
	if err != nil {
		t.Fatalf("server %d: GET %s: %v", i, name, err)
	}
	return v, true
}

// holding returns the servers, by index, on which the key name holds value.
func (f *fleet) holding(t *testing.T, name, value string) []int {
	t.Helper()
	var on []int
	for i := range f.raw {
		if v, ok := f.value(t, i, name); ok && v == value {
			on = append(on, i)
		}
	}
	return on
}

// withKey returns the servers on which the key name exists, whatever it
// holds, and what it holds there.
func (f *fleet) withKey(t *testing.T, name string) map[int]string {
	t.Helper()
	on := map[int]string{}
	for i := range f.raw {
		if v, ok := f.value(t, i, name); ok {
			on[i] = v
		}
	}
	return on
}

// set sets the key name to value on the given servers, as another holder
// would, for ttl.
func (f *fleet) set(t *testing.T, name, value string, ttl time.Duration, servers ...int) {
	t.Helper()
	for _, i := range servers {
		if err := f.raw[i].Set(ctx(t), name, value, ttl).Err(); err != nil {
			t.Fatalf("server %d: SET %s: %v", i, name, err)
		}
	}
}

// pttl returns the remaining time to live of the key name on server i.
func (f *fleet) pttl(t *testing.T, i int, name string) time.Duration {
	t.Helper()
	d, err := f.raw[i].PTTL(ctx(t), name).Result()
	if err != nil {
		t.Fatalf("server %d: PTTL %s: %v", i, name, err)
	}
	return d
}

// resetStats clears the command statistics of every server.
func (f *fleet) resetStats(t *testing.T) {
	t.Helper()
	for i, c := range f.raw {
		if err := c.ConfigResetStat(ctx(t)).Err(); err != nil {
			t.Fatalf("server %d: CONFIG RESETSTAT: %v", i, err)
		}
	}
}

// inspection lists the commands that the test's own clients send, and
// those every go-redis client sends on a new connection.
var inspection = map[string]bool{
	"info": true, "config|resetstat": true, "config|set": true, "hello": true,
	"client|setinfo": true, "ping": true,
}

// commands returns, summed over the servers, how many times each command
// was called since resetStats, leaving out the inspection's own (INFO,
// CONFIG, HELLO, CLIENT SETINFO, PING).
func (f *fleet) commands(t *testing.T) map[string]int {
	t.Helper()
	calls := map[string]int{}
	for i, c := range f.raw {
		info, err := c.Info(ctx(t), "commandstats").Result()
		if err != nil {
			t.Fatalf("server %d: INFO commandstats: %v", i, err)
		}
		for _, line := range strings.Split(info, "\n") {
			line = strings.TrimSpace(line)
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
			if !ok || !strings.HasPrefix(line, "cmdstat_") || inspection[name] {
				continue
			}
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			calls[name] += n
		}
	}
	return calls
}

// pause sleeps ms milliseconds: only where a test must let time pass (a
// key expire, a request be under way), never to assert a speed.
func pause(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }

// within runs fn on a goroutine and returns its error, failing the test if
// fn has not returned after opTimeout (a hang, not a slowness).
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(opTimeout):
		t.Fatalf("%s has not returned after %v", what, opTimeout)
		return nil
	}
}

// sortedNodes returns the nodes of an *ErrTaken in order.
func sortedNodes(nodes []int) []int {
	out := append([]int(nil), nodes...)
	sort.Ints(out)
	return out
}

// countingPool is a user's own redis.Pool: it wraps another and counts the
// calls the library makes on its connections. It implements redis.Pool and
// nothing else, so the library must treat it as it would any Pool.
type countingPool struct {
	inner redis.Pool

	mu        sync.Mutex // guards calls, scripts and setValues
	calls     map[string]int
	scripts   []redis.Script // a copy of every script given to Eval
	setValues []string       // the value of every SetNX
}

func newCountingPool(inner redis.Pool) *countingPool {
	return &countingPool{inner: inner, calls: map[string]int{}}
}

func (p *countingPool) count(call string) {
	p.mu.Lock()
	p.calls[call]++
	p.mu.Unlock()
}

// snapshot returns the calls counted so far.
func (p *countingPool) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.calls))
	for k, v := range p.calls {
		out[k] = v
	}
	return out
}

// evalScripts returns a copy of every script given to Eval so far.
func (p *countingPool) evalScripts() []redis.Script {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]redis.Script(nil), p.scripts...)
}

// setNXValues returns the distinct values given to SetNX so far.
func (p *countingPool) setNXValues() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for _, v := range p.setValues {
		out[v] = true
	}
	return out
}

func (p *countingPool) Get(ctx context.Context) (redis.Conn, error) {
	p.count("Pool.Get")
	c, err := p.inner.Get(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{inner: c, pool: p}, nil
}

type countingConn struct {
	inner redis.Conn
	pool  *countingPool
}

func (c *countingConn) Get(name string) (string, error) {
	c.pool.count("Get")
	return c.inner.Get(name)
}

func (c *countingConn) Set(name string, value string) (bool, error) {
	c.pool.count("Set")
	return c.inner.Set(name, value)
}

func (c *countingConn) SetNX(name string, value string, expiry time.Duration) (bool, error) {
	c.pool.count("SetNX")
	c.pool.mu.Lock()
	c.pool.setValues = append(c.pool.setValues, value)
	c.pool.mu.Unlock()
	return c.inner.SetNX(name, value, expiry)
}

func (c *countingConn) Eval(script *redis.Script, keysAndArgs ...any) (any, error) {
	c.pool.count("Eval")
	c.pool.mu.Lock()
	c.pool.scripts = append(c.pool.scripts, *script)
	c.pool.mu.Unlock()
	return c.inner.Eval(script, keysAndArgs...)
}

func (c *countingConn) ScriptLoad(script *redis.Script) error {
	c.pool.count("ScriptLoad")
	return c.inner.ScriptLoad(script)
}

func (c *countingConn) PTTL(name string) (time.Duration, error) {
	c.pool.count("PTTL")
	return c.inner.PTTL(name)
}

func (c *countingConn) Close() error {
	c.pool.count("Conn.Close")
	return c.inner.Close()
}

// countingFleet is a fleet whose pools are countingPools over go-redis v9
// pools.
func countingFleet(t *testing.T, n int, opts ...fleetOption) (*fleet, []*countingPool) {
	t.Helper()
	var counters []*countingPool
	var mu sync.Mutex
	opts = append(opts, withPool(func(c goredislib.UniversalClient) redis.Pool {
		p := newCountingPool(goredis.NewPool(c))
		mu.Lock()
		counters = append(counters, p)
		mu.Unlock()
		return p
	}))
	f := newFleet(t, n, opts...)
	return f, counters[:n]
}

// callsOf sums a call over the counting pools, and says per pool.
func callsOf(pools []*countingPool, call string) (total int, perPool []int) {
	for _, p := range pools {
		n := p.snapshot()[call]
		total += n
		perPool = append(perPool, n)
	}
	return total, perPool
}

// uniqueName returns a lock name for the running test.
func uniqueName(t *testing.T, suffix ...any) string {
	return "compat:" + t.Name() + fmt.Sprint(suffix...)
}
