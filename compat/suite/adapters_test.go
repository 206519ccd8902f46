package suite

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	goredisv7lib "github.com/go-redis/redis/v7"
	goredisv8lib "github.com/go-redis/redis/v8"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	goredisv7 "github.com/go-redsync/redsync/v4/redis/goredis/v7"
	goredisv8 "github.com/go-redsync/redsync/v4/redis/goredis/v8"
	goredisv9 "github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/go-redsync/redsync/v4/redis/redigo"
	"github.com/go-redsync/redsync/v4/redis/rueidis"
	"github.com/go-redsync/redsync/v4/redis/valkeygo"
	redigolib "github.com/gomodule/redigo/redis"
	goredislib "github.com/redis/go-redis/v9"
	rueidislib "github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"
	valkeylib "github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeycompat"

	"github.com/quorumlock/redsync/internal/redistest"
)

// adapter makes a Pool of one client library for the server at addr, and
// closes what it opened when the test ends.
type adapter struct {
	name    string
	newPool func(t *testing.T, addr string) redis.Pool
}

// adapters are the adapters at redsync's import paths, but redis/goredis
// (go-redis v6 in redsync, v9 here: the README's one exception).
var adapters = []adapter{
	{"goredis/v7", func(t *testing.T, addr string) redis.Pool {
		c := goredisv7lib.NewClient(&goredisv7lib.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return goredisv7.NewPool(c)
	}},
	{"goredis/v8", func(t *testing.T, addr string) redis.Pool {
		c := goredisv8lib.NewClient(&goredisv8lib.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return goredisv8.NewPool(c)
	}},
	{"goredis/v9", func(t *testing.T, addr string) redis.Pool {
		c := goredislib.NewClient(&goredislib.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return goredisv9.NewPool(c)
	}},
	{"redigo", func(t *testing.T, addr string) redis.Pool {
		p := &redigolib.Pool{MaxIdle: 8, DialContext: func(ctx context.Context) (redigolib.Conn, error) {
			return redigolib.DialContext(ctx, "tcp", addr)
		}}
		t.Cleanup(func() { _ = p.Close() })
		return redigo.NewPool(p)
	}},
	{"rueidis", func(t *testing.T, addr string) redis.Pool {
		c, err := rueidislib.NewClient(rueidislib.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return rueidis.NewPool(rueidiscompat.NewAdapter(c))
	}},
	{"valkeygo", func(t *testing.T, addr string) redis.Pool {
		c, err := valkeylib.NewClient(valkeylib.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return valkeygo.NewPool(valkeycompat.NewAdapter(c))
	}},
}

// adapterFleet starts n servers and returns a Redsync whose pool i is made
// by the adapter newPools[i%len(newPools)], and a client per server to
// look at the keys.
func adapterFleet(t *testing.T, n int, newPools ...adapter) (*redsync.Redsync, *fleet) {
	t.Helper()
	f := &fleet{servers: redistest.Start(t, n)}
	pools := make([]redis.Pool, n)
	for i, s := range f.servers {
		f.raw = append(f.raw, s.Client(t))
		pools[i] = newPools[i%len(newPools)].newPool(t, s.Addr())
	}
	rs := redsync.New(pools...)
	t.Cleanup(func() { settle(rs) })
	return rs, f
}

func TestEveryAdapterLocksExtendsAndUnlocks(t *testing.T) {
	cases := make([][]adapter, 0, len(adapters)+1)
	for _, a := range adapters {
		cases = append(cases, []adapter{a})
	}
	cases = append(cases, adapters[2:5]) // go-redis v9, redigo, rueidis in one fleet
	for _, c := range cases {
		name := c[0].name
		if len(c) > 1 {
			name = "Mixed"
		}
		t.Run(name, func(t *testing.T) {
			rs, f := adapterFleet(t, 3, c...)
			lock := uniqueName(t)
			m := rs.NewMutex(lock, redsync.WithExpiry(2*time.Second))
			if err := m.Lock(); err != nil {
				t.Fatalf("Lock: %v", err)
			}
			// What a Lock that returns before every server answered may
			// leave undone is TestLockReturnsWithItsKeyOnEveryServer's.
			settle(rs)
			other := rs.NewMutex(lock)
			if err := other.TryLock(); err == nil {
				t.Errorf("a second TryLock of the held lock succeeded")
			} else if _, taken := takenNodes(err); !taken {
				t.Errorf("a second TryLock of the held lock = %v, want an *ErrTaken", err)
			}
			pause(200)
			if ok, err := m.Extend(); !ok || err != nil {
				t.Fatalf("Extend = %v, %v", ok, err)
			}
			if ok, err := m.Valid(); !ok || err != nil {
				settle(rs)
				t.Fatalf("Valid = %v, %v; the lock's value %q, the keys %v", ok, err, m.Value(), f.withKey(t, lock))
			}
			settle(rs)
			for i := range f.servers {
				if d := f.pttl(t, i, lock); d <= 1800*time.Millisecond {
					t.Errorf("server %d: PTTL %v after Extend, want the 2 s expiry again", i, d)
				}
			}
			if ok, err := m.Unlock(); !ok || err != nil {
				t.Fatalf("Unlock = %v, %v", ok, err)
			}
			settle(rs)
			if on := f.withKey(t, lock); len(on) != 0 {
				t.Errorf("after Unlock the key is on %v", on)
			}
		})
	}
}

// Item 3 of issue 16, on every adapter, on connections just made. With
// redsync a Lock returns with its key on every server (it waits for all
// of them), so a contender's TryLock right after is refused by each and
// its *ErrTaken names all three. Here ("Success does not wait long for a
// stalled server") a success waits for the others only about as long
// again as the quorum took, so a server slower than that (a new rueidis
// or valkey-go client's first commands, say) may get the key after Lock
// returned, and a contender's try may take it first; the holder then sets
// its key there once the contender's is gone. So on this side: the
// TryLock is refused by a quorum, and the holder's key ends up on every
// server.
func TestLockReturnsWithItsKeyOnEveryServer(t *testing.T) {
	const rounds = 20
	for _, a := range adapters {
		t.Run(a.name, func(t *testing.T) {
			_, f := adapterFleet(t, 3, a)
			short, fewer := 0, 0
			var firstShort, firstFewer string
			for round := 0; round < rounds; round++ {
				// Pools on new clients every round, as after a start.
				pools := make([]redis.Pool, len(f.servers))
				for i, s := range f.servers {
					pools[i] = a.newPool(t, s.Addr())
				}
				rs := redsync.New(pools...)
				t.Cleanup(func() { settle(rs) })
				name := uniqueName(t, round)
				m := rs.NewMutex(name)
				if err := m.Lock(); err != nil {
					t.Fatalf("round %d: Lock: %v", round, err)
				}
				if on := f.holding(t, name, m.Value()); len(on) != 3 {
					short++
					if firstShort == "" {
						firstShort = fmt.Sprintf("round %d: on %v", round, on)
					}
				}
				err := rs.NewMutex(name).TryLock()
				nodes, taken := takenNodes(err)
				if !taken {
					t.Fatalf("round %d: TryLock right after a Lock: %v, want an *ErrTaken", round, err)
				}
				if len(nodes) != 3 {
					fewer++
					if firstFewer == "" {
						firstFewer = fmt.Sprintf("round %d: %v", round, err)
					}
				}
				settle(rs)
				if quorumlock {
					deadline := time.Now().Add(2 * time.Second)
					for len(f.holding(t, name, m.Value())) != 3 && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
					if on := f.holding(t, name, m.Value()); len(on) != 3 {
						t.Errorf("round %d: the holder's key is on %v only, 2 s after the contender's try", round, on)
					}
				}
				if ok, err := m.Unlock(); !ok || err != nil {
					t.Fatalf("round %d: Unlock = %v, %v", round, ok, err)
				}
			}
			t.Logf("%s: %d of %d Locks returned before their key was on every server (first: %s); %d of %d TryLocks right after named fewer than 3 (first: %s)",
				side, short, rounds, firstShort, fewer, rounds, firstFewer)
			if !quorumlock {
				if short != 0 {
					t.Errorf("%d of %d Locks returned before their key was on every server; first: %s", short, rounds, firstShort)
				}
				if fewer != 0 {
					t.Errorf("%d of %d TryLocks right after a Lock did not name every server; first: %s", fewer, rounds, firstFewer)
				}
			}
		})
	}
}

// "PTTL is in milliseconds on every adapter, including -1 ms for a key
// without expiry and -2 ms for a missing key."
func TestDifferencePTTLInMilliseconds(t *testing.T) {
	// What redsync's adapters return: go-redis passes Redis' -1 and -2
	// through as bare nanoseconds, as do the rueidis and valkey-go
	// compat layers; redigo's adapter scales them to milliseconds.
	redsyncNoExpiry := map[string]time.Duration{
		"goredis/v7": -1, "goredis/v8": -1, "goredis/v9": -1,
		"redigo": -time.Millisecond, "rueidis": -1, "valkeygo": -1,
	}
	redsyncMissing := map[string]time.Duration{
		"goredis/v7": -2, "goredis/v8": -2, "goredis/v9": -2,
		"redigo": -2 * time.Millisecond, "rueidis": -2, "valkeygo": -2,
	}
	for _, a := range adapters {
		t.Run(a.name, func(t *testing.T) {
			_, f := adapterFleet(t, 1, a)
			pool := a.newPool(t, f.servers[0].Addr())
			conn, err := pool.Get(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			f.raw[0].Set(ctx(t), "no-expiry", "v", 0)
			f.raw[0].Set(ctx(t), "expiring", "v", 5*time.Second)

			wantNoExpiry, wantMissing := -time.Millisecond, -2*time.Millisecond
			if !quorumlock {
				wantNoExpiry, wantMissing = redsyncNoExpiry[a.name], redsyncMissing[a.name]
			}
			if d, err := conn.PTTL("no-expiry"); err != nil || d != wantNoExpiry {
				t.Errorf("PTTL of a key without expiry = %v, %v; want %v", d, err, wantNoExpiry)
			}
			if d, err := conn.PTTL("missing"); err != nil || d != wantMissing {
				t.Errorf("PTTL of a missing key = %v, %v; want %v", d, err, wantMissing)
			}
			if d, err := conn.PTTL("expiring"); err != nil || d <= 4*time.Second || d > 5*time.Second {
				t.Errorf("PTTL of a key expiring in 5 s = %v, %v", d, err)
			}
		})
	}
}

// "The redigo adapter's ScriptLoad does not panic; it returns an error
// when the reply is not a hash."
func TestDifferenceRedigoScriptLoad(t *testing.T) {
	const src = "return 'compat'"
	sum := sha1.Sum([]byte(src))
	hash := hex.EncodeToString(sum[:])
	// scriptLoad runs ScriptLoad through the redigo adapter and reports
	// what it panicked with, if it did.
	scriptLoad := func(t *testing.T, p redigo.Pool) (script *redis.Script, panicked any, err error) {
		conn, err := redigo.NewPool(p).Get(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		script = redis.NewScript(0, src, "")
		defer func() { panicked = recover() }()
		return script, nil, conn.ScriptLoad(script)
	}
	t.Run("RealServer", func(t *testing.T) {
		s := redistest.Start(t, 1)[0]
		p := &redigolib.Pool{MaxIdle: 1, DialContext: func(ctx context.Context) (redigolib.Conn, error) {
			return redigolib.DialContext(ctx, "tcp", s.Addr())
		}}
		defer p.Close()
		script, panicked, err := scriptLoad(t, p)
		if quorumlock {
			if panicked != nil || err != nil || script.Hash != hash {
				t.Errorf("ScriptLoad = %v (panic %v), Hash %q; want nil, %q", err, panicked, script.Hash, hash)
			}
			return
		}
		// A real server's bulk string reply is a []byte in redigo.
		if panicked == nil {
			t.Errorf("redsync: ScriptLoad = %v, Hash %q; want a panic on the []byte reply", err, script.Hash)
		}
	})
	t.Run("ReplyNotAHash", func(t *testing.T) {
		script, panicked, err := scriptLoad(t, fakeRedigoPool{reply: int64(1)})
		if quorumlock {
			if panicked != nil || err == nil || script.Hash != "" {
				t.Errorf("ScriptLoad with an integer reply = %v (panic %v), Hash %q; want an error", err, panicked, script.Hash)
			}
			return
		}
		if panicked == nil {
			t.Errorf("redsync: ScriptLoad with an integer reply = %v; want a panic", err)
		}
	})
}

// fakeRedigoPool hands out connections that answer every command with
// reply.
type fakeRedigoPool struct{ reply any }

func (p fakeRedigoPool) Get() redigolib.Conn { return fakeRedigoConn(p) }

func (p fakeRedigoPool) GetContext(context.Context) (redigolib.Conn, error) {
	return fakeRedigoConn(p), nil
}

type fakeRedigoConn struct{ reply any }

func (c fakeRedigoConn) Close() error                   { return nil }
func (c fakeRedigoConn) Err() error                     { return nil }
func (c fakeRedigoConn) Do(string, ...any) (any, error) { return c.reply, nil }
func (c fakeRedigoConn) Send(string, ...any) error      { return errors.New("fake: Send") }
func (c fakeRedigoConn) Flush() error                   { return nil }
func (c fakeRedigoConn) Receive() (any, error)          { return nil, errors.New("fake: Receive") }
func (c fakeRedigoConn) DoContext(_ context.Context, cmd string, args ...any) (any, error) {
	return c.Do(cmd, args...)
}
