package scripts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis keeps probing a server it failed to dial for a second
		// after its client is closed.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

// The hashes the scripts had when they moved here: a script whose text
// changes (an editor's trailing newline, a reflowed line) gets a new hash,
// which must be a decision, not an accident.
var pinnedHashes = []struct {
	name   string
	script *redis.Script
	keys   int
	hash   string
}{
	{"Release", Release, 4, "1d19702c360f87b3f6b49bd0ee517db6659be5af"},
	{"AcquireQueued", AcquireQueued, 4, "24788cbaeda69d75a35c18fce49d9bba5c792845"},
	{"AcquireAfterWait", AcquireAfterWait, 1, "aa78608e9703e481a1fa14806cf6255a7c63b78a"},
	{"Extend", Extend, 1, "65ab66d1c03f164dd42ccb7df847c91260efa561"},
	{"ExtendOrSet", ExtendOrSet, 1, "d22af8015f6aeca80e313bbaa942ae359dc7b565"},
	{"Check", Check, 0, "3bbeac3cb2cff43a54cd6f55f4b23aba4f85b442"},
	{"FencedAcquire", FencedAcquire, 2, "22a9cfb8d9bfd354d1756cd7b2923ce9f01ba59d"},
	{"FencedAcquireOne", FencedAcquireOne, 2, "db3b2e0b1c3ecf267c6dc7987c971ad8d61c9ce2"},
	{"FenceWriteBack", FenceWriteBack, 2, "cc09632e9b85263ae96bbfbd773bc67f4ced0df8"},
	{"MultiAcquire", MultiAcquire, -1, "df764d1502291272144287c267a2b745861497f2"},
	{"MultiRelease", MultiRelease, -1, "78b8e4930fb29fdf790d3634f62d1a64f8fd4990"},
	{"MultiExtend", MultiExtend, -1, "72f2f2f1e42cb0c1586b1ec54fe674253eaaffd7"},
	{"PermitAcquire", PermitAcquire, -1, "0c932fd64ffbbed970d1f26e83fca29ea903281a"},
	{"FencedMultiAcquire", FencedMultiAcquire, -1, "efd65d039165f70b8cd351df5a61789f291344bc"},
	{"FencedPermitAcquire", FencedPermitAcquire, -1, "ddb6596ad23dbbe7b97e0d7108652bc0f6dc3a63"},
	{"MultiFenceWriteBack", MultiFenceWriteBack, -1, "2e952a5fab6b8c3f7422d08cd5d7b46470b99d78"},
	{"Proclaim", Proclaim, 2, "303aa9fcd1a4f070be2ec919290a13b5f39f0dc0"},
	{"ReadLeader", ReadLeader, 2, "36e1e27753f7a82e15f932962804e933bb15e3cc"},
	{"RWReadAcquire", RWReadAcquire, 3, "42d1432d312458bbf182402d6091277cb967e215"},
	{"RWReadRelease", RWReadRelease, 2, "43c5fabf1c8b27a68de787b8034391bf394bd2e0"},
	{"RWWriteAcquire", RWWriteAcquire, 3, "38e49229f098f29a0eb6d6ec323ed5d6f5469426"},
	{"RWWriteRelease", RWWriteRelease, 2, "8c246f8a4051e57e7c3fe865ba55a3671a4e9a37"},
	{"RWReadExtend", RWReadExtend, 2, "b4423d70de1d2acd7d51e586daa762d795ff745a"},
	{"RWValid", RWValid, 2, "8a00e688aca871654a68c01755afa93bc2d865e5"},
}

func TestScriptsKeepTheirHashAndKeyCount(t *testing.T) {
	for _, tt := range pinnedHashes {
		if tt.script.Hash != tt.hash {
			t.Errorf("%s: hash %s, want %s (the script's text changed)", tt.name, tt.script.Hash, tt.hash)
		}
		if got := goredis.NewScript(tt.script.Src).Hash(); got != tt.script.Hash {
			t.Errorf("%s: hash %s, but go-redis computes %s", tt.name, tt.script.Hash, got)
		}
		if tt.script.KeyCount != tt.keys {
			t.Errorf("%s: KeyCount %d, want %d", tt.name, tt.script.KeyCount, tt.keys)
		}
		for _, line := range []string{readCounterLine, publishLine, countersLine} {
			if strings.Contains(tt.script.Src, strings.TrimSpace(line)+"\n") {
				t.Errorf("%s: the line %q was not replaced", tt.name, line)
			}
		}
	}
}

func TestWithReadCounterNeedsExactlyOneLine(t *testing.T) {
	for _, src := range []string{"return 1\n", readCounterLine + readCounterLine} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("withReadCounter(%q) did not panic", src)
				}
			}()
			withReadCounter(src)
		}()
	}
}

// server is one redis-server for a test, with a go-redis client on it.
type server struct {
	t   *testing.T
	ctx context.Context
	rdb *goredis.Client
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerWithArgs(t)
}

// newServerWithArgs is newServer for a redis-server started with args.
func newServerWithArgs(t *testing.T, args ...string) *server {
	t.Helper()
	srv := redistest.StartWithArgs(t, 1, args...)[0]
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return &server{t: t, ctx: context.Background(), rdb: rdb}
}

// in returns s for the subtest t: its helpers fail t.
func (s *server) in(t *testing.T) *server {
	c := *s
	c.t = t
	return &c
}

// run runs script by EVALSHA, loading it by EVAL when the server does not
// know it yet, and returns its reply.
func (s *server) run(script *redis.Script, keys []string, args ...any) any {
	s.t.Helper()
	if script.KeyCount >= 0 && len(keys) != script.KeyCount {
		s.t.Fatalf("%d keys for a script of %d", len(keys), script.KeyCount)
	}
	reply, err := s.rdb.EvalSha(s.ctx, script.Hash, keys, args...).Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		reply, err = s.rdb.Eval(s.ctx, script.Src, keys, args...).Result()
	}
	if err != nil {
		s.t.Fatalf("the script failed: %v", err)
	}
	return reply
}

// get returns the value of key, "" when missing, and its PTTL.
func (s *server) get(key string) (string, time.Duration) {
	s.t.Helper()
	v, err := s.rdb.Get(s.ctx, key).Result()
	if errors.Is(err, goredis.Nil) {
		return "", -2
	}
	if err != nil {
		s.t.Fatal(err)
	}
	ttl, err := s.rdb.PTTL(s.ctx, key).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	return v, ttl
}

func (s *server) set(key, value string, ttl time.Duration) {
	s.t.Helper()
	if err := s.rdb.Set(s.ctx, key, value, ttl).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// outOfMemory makes the server refuse every write that may grow memory
// (maxmemory 1 byte, noeviction), until the function returned is called.
func (s *server) outOfMemory() (restore func()) {
	s.t.Helper()
	if err := s.rdb.ConfigSet(s.ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		s.t.Fatal(err)
	}
	if err := s.rdb.ConfigSet(s.ctx, "maxmemory", "1").Err(); err != nil {
		s.t.Fatal(err)
	}
	return func() {
		s.t.Helper()
		if err := s.rdb.ConfigSet(s.ctx, "maxmemory", "0").Err(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// flush empties the server between cases.
func (s *server) flush() {
	s.t.Helper()
	if err := s.rdb.FlushAll(s.ctx).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// wantError fails the test unless err is an error whose text is want.
func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
