package suite

import (
	"context"
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
	goredislib "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis/rueidiscompat"
	"github.com/valkey-io/valkey-go/valkeycompat"
)

// Issue 16 item 1: a program that uses redsync's identifiers as values (a
// constructor in a variable, a table of constructors, a method expression)
// builds. These are compile-time checks; apidiff (compat/apidiff.sh)
// checks every exported identifier.
var (
	_ func(goredislib.UniversalClient) redis.Pool   = goredisv9.NewPool
	_ func(goredisv8lib.UniversalClient) redis.Pool = goredisv8.NewPool
	_ func(goredisv7lib.UniversalClient) redis.Pool = goredisv7.NewPool
	_ func(redigo.Pool) redis.Pool                  = redigo.NewPool
	_ func(rueidiscompat.Cmdable) redis.Pool        = rueidis.NewPool
	_ func(valkeycompat.Cmdable) redis.Pool         = valkeygo.NewPool

	_ func(...redis.Pool) *redsync.Redsync                             = redsync.New
	_ func(*redsync.Redsync, string, ...redsync.Option) *redsync.Mutex = (*redsync.Redsync).NewMutex
	_ func(int, string, string) *redis.Script                          = redis.NewScript

	_ func(*redsync.Mutex) error                          = (*redsync.Mutex).Lock
	_ func(*redsync.Mutex, context.Context) error         = (*redsync.Mutex).LockContext
	_ func(*redsync.Mutex) error                          = (*redsync.Mutex).TryLock
	_ func(*redsync.Mutex, context.Context) error         = (*redsync.Mutex).TryLockContext
	_ func(*redsync.Mutex) (bool, error)                  = (*redsync.Mutex).Unlock
	_ func(*redsync.Mutex, context.Context) (bool, error) = (*redsync.Mutex).UnlockContext
	_ func(*redsync.Mutex) (bool, error)                  = (*redsync.Mutex).Extend
	_ func(*redsync.Mutex, context.Context) (bool, error) = (*redsync.Mutex).ExtendContext
	_ func(*redsync.Mutex) (bool, error)                  = (*redsync.Mutex).Valid
	_ func(*redsync.Mutex, context.Context) (bool, error) = (*redsync.Mutex).ValidContext
	_ func(*redsync.Mutex) string                         = (*redsync.Mutex).Name
	_ func(*redsync.Mutex) string                         = (*redsync.Mutex).Value
	_ func(*redsync.Mutex) time.Time                      = (*redsync.Mutex).Until
	_ func(time.Duration) redsync.Option                  = redsync.WithExpiry
	_ func(int) redsync.Option                            = redsync.WithTries
	_ func(time.Duration) redsync.Option                  = redsync.WithRetryDelay
	_ func(redsync.DelayFunc) redsync.Option              = redsync.WithRetryDelayFunc
	_ func(float64) redsync.Option                        = redsync.WithDriftFactor
	_ func(float64) redsync.Option                        = redsync.WithTimeoutFactor
	_ func(func() (string, error)) redsync.Option         = redsync.WithGenValueFunc
	_ func(string) redsync.Option                         = redsync.WithValue
	_ func(bool) redsync.Option                           = redsync.WithFailFast
	_ func(bool) redsync.Option                           = redsync.WithShufflePools
	_ func() redsync.Option                               = redsync.WithSetNXOnExtend
	_ redsync.Option                                      = redsync.OptionFunc(func(*redsync.Mutex) {})
	_ error                                               = redsync.ErrTaken{}
	_ error                                               = &redsync.ErrTaken{}
	_ error                                               = redsync.ErrNodeTaken{}
	_ error                                               = redsync.RedisError{}
	_ interface{ Unwrap() error }                         = redsync.RedisError{}
	_ redis.Conn                                          = redis.Conn(nil)
	_                                                     = redis.Script{KeyCount: 1, Src: "", Hash: ""}
)

// Issue 16 item 6: NewScript keeps what it is given (redsync computes no
// hash).
func TestNewScriptKeepsItsFieldsAsGiven(t *testing.T) {
	tests := []struct {
		keyCount  int
		src, hash string
	}{
		{-1, "return 2", ""},
		{1, "return 1", ""},
		{2, "return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"},
		{0, "return 1", "not a hash at all"},
	}
	for _, tt := range tests {
		got := redis.NewScript(tt.keyCount, tt.src, tt.hash)
		want := redis.Script{KeyCount: tt.keyCount, Src: tt.src, Hash: tt.hash}
		if *got != want {
			t.Errorf("NewScript(%d, %q, %q) = %+v, want %+v", tt.keyCount, tt.src, tt.hash, *got, want)
		}
	}
}

// A script made by NewScript with an empty hash still runs through every
// adapter (redsync's fall back to EVAL; this library's compute the hash).
func TestScriptWithoutHashRunsThroughTheGoRedisAdapter(t *testing.T) {
	f := newFleet(t, 1)
	conn, err := f.pools[0].Get(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	script := redis.NewScript(1, `return ARGV[1] .. KEYS[1]`, "")
	for i := 0; i < 2; i++ {
		v, err := conn.Eval(script, "k", "v")
		if err != nil || v != "vk" {
			t.Fatalf("Eval %d = %#v, %v; want \"vk\", nil", i+1, v, err)
		}
	}
	if script.Hash != "" {
		t.Errorf("Eval changed the script's Hash to %q", script.Hash)
	}
}
