// Package adaptertest is the conformance suite for redis.Pool adapters: it
// checks, against a real redis-server, the semantics that the package
// comment of github.com/quorumlock/redsync/redis asks every adapter to share.
//
// An adapter's test calls Run with a constructor for its Pool. The suite
// starts its own server with internal/redistest (and is skipped where
// redis-server is not installed).
package adaptertest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/redistest"
	redsyncredis "github.com/quorumlock/redsync/redis"
)

const (
	// opTimeout bounds every command the suite expects to succeed, so that
	// a hanging adapter fails the test instead of stalling it.
	opTimeout = 10 * time.Second
	// quick is how long a command may take to fail once its context is
	// already cancelled.
	quick = time.Second
	// pausedDeadline is the context deadline given to commands sent to a
	// paused server, and deadlineSlack how much later they may return.
	// go-redis' default ReadTimeout (3 s) is well beyond the sum, so a
	// client that ignores the deadline fails.
	pausedDeadline = 200 * time.Millisecond
	deadlineSlack  = 800 * time.Millisecond
)

// Run runs the conformance suite. newPool must return a Pool for the server
// at addr ("host:port") and release whatever it opened in t.Cleanup. The
// Pool it returns for the suite's server is shared by all subtests, which
// run one after the other (some flush the script cache or pause the
// server); the subtest that kills a server calls newPool again, for a server
// of its own.
//
// For the deadline subtest to pass, the client must honour context
// deadlines on socket I/O (for go-redis: Options.ContextTimeoutEnabled).
//
// When the Pool is a redis.Subscriber, Run also checks its Subscriptions.
func Run(t *testing.T, newPool func(t *testing.T, addr string) redsyncredis.Pool) {
	srv := redistest.Start(t, 1)[0]
	s := &suite{srv: srv, client: srv.Client(t), pool: newPool(t, srv.Addr()), newPool: newPool}

	t.Run("GetOfMissingKeyReturnsEmptyString", s.testGetMissing)
	t.Run("GetReturnsWhatSetStored", s.testSetThenGet)
	t.Run("SetNXOnMissingKeySetsValueAndExpiry", s.testSetNXMissing)
	t.Run("SetNXOnExistingKeyLeavesItAlone", s.testSetNXExisting)
	t.Run("PTTLIsInMilliseconds", s.testPTTL)
	t.Run("EvalReplies", s.testEvalReplies)
	t.Run("EvalPassesKeysAndArgs", s.testEvalKeysAndArgs)
	t.Run("EvalWithBadKeyCountReturnsError", s.testEvalBadKeyCount)
	t.Run("EvalFallsBackToEvalAfterScriptFlush", s.testEvalAfterScriptFlush)
	t.Run("EvalFallsBackToEvalOnWrongHash", s.testEvalWrongHash)
	t.Run("EvalWithoutHashSendsEVALSHAOfTheSource", s.testEvalWithoutHash)
	t.Run("ScriptLoadStoresServerHash", s.testScriptLoad)
	t.Run("GetWithNilContextWorks", s.testNilContext)
	t.Run("CloseReleasesConnection", s.testClose)
	t.Run("CancelledContextFailsCommandWithoutSendingIt", s.testCancelledContext)
	t.Run("GetWithCancelledContextFails", s.testGetCancelledContext)
	t.Run("DeadlineBoundsCommandsToPausedServer", s.testDeadlineWhilePaused)
	t.Run("DoReplies", s.testDoReplies)
	t.Run("DoReportsErrors", s.testDoErrors)
	if _, ok := s.pool.(redsyncredis.Subscriber); ok {
		t.Run("SubscriptionConfirmsAndDeliversMessages", s.testSubscription)
		t.Run("SubscriptionReceiveFailsWhenTheServerDies", s.testSubscriptionServerKilled)
		t.Run("ShardedSubscriptionConfirmsAndDeliversMessages", s.testShardedSubscription)
		t.Run("ShardedSubscriptionSaysWhenTheServerHasNoShardedPubSub", s.testNoShardedPubSub)
	}
}

// suite holds what the subtests share.
type suite struct {
	srv    *redistest.Server
	client *goredis.Client // inspects the server behind the adapter's back
	pool   redsyncredis.Pool
	// newPool is Run's argument, for subtests that need a server of their
	// own.
	newPool func(t *testing.T, addr string) redsyncredis.Pool
}

// conn returns a connection from the pool bounded by opTimeout, closed in
// t.Cleanup.
func (s *suite) conn(t *testing.T) redsyncredis.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	c, err := s.pool.Get(ctx)
	require.NoError(t, err, "Pool.Get")
	require.NotNil(t, c, "Pool.Get returned a nil Conn without an error")
	t.Cleanup(func() { assert.NoError(t, c.Close(), "Conn.Close") })
	return c
}

// clientCtx returns a context for the suite's own client.
func clientCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// key returns a key name unique to the running subtest.
func key(t *testing.T) string {
	return "adaptertest:" + t.Name()
}

// sha1Hex is the hash EVALSHA expects for src.
func sha1Hex(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}

// bulkString returns v as a string if it is a Redis bulk string as a client
// decodes it: go-redis gives string, redigo []byte. The contract leaves the
// Go type of a script's reply to the client library.
func bulkString(t *testing.T, v any) string {
	t.Helper()
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	t.Fatalf("reply is %T (%#v), want a bulk string (string or []byte)", v, v)
	return ""
}

func (s *suite) testGetMissing(t *testing.T) {
	value, err := s.conn(t).Get(key(t))
	require.NoError(t, err)
	assert.Equal(t, "", value)
}

func (s *suite) testSetThenGet(t *testing.T) {
	c := s.conn(t)
	ok, err := c.Set(key(t), "v1")
	require.NoError(t, err)
	assert.True(t, ok, "Set reports OK")

	value, err := c.Get(key(t))
	require.NoError(t, err)
	assert.Equal(t, "v1", value)

	ttl, err := s.client.PTTL(clientCtx(t), key(t)).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "Set must not give the key an expiry (go-redis reports -1 as -1ns)")
}

func (s *suite) testSetNXMissing(t *testing.T) {
	// Not a whole number of seconds: the expiry must travel in milliseconds.
	const expiry = 2500 * time.Millisecond
	ok, err := s.conn(t).SetNX(key(t), "mine", expiry)
	require.NoError(t, err)
	assert.True(t, ok, "SetNX on a missing key reports it set it")

	value, err := s.client.Get(clientCtx(t), key(t)).Result()
	require.NoError(t, err)
	assert.Equal(t, "mine", value)
	ttl, err := s.client.PTTL(clientCtx(t), key(t)).Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, ttl, expiry)
	assert.Greater(t, ttl, expiry-time.Second, "the key must expire in about %v", expiry)
}

func (s *suite) testSetNXExisting(t *testing.T) {
	require.NoError(t, s.client.Set(clientCtx(t), key(t), "theirs", 0).Err())

	ok, err := s.conn(t).SetNX(key(t), "mine", 10*time.Second)
	require.NoError(t, err, "a refused SET NX is not an error")
	assert.False(t, ok)

	value, err := s.client.Get(clientCtx(t), key(t)).Result()
	require.NoError(t, err)
	assert.Equal(t, "theirs", value)
	ttl, err := s.client.PTTL(clientCtx(t), key(t)).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "the refused SetNX must not touch the expiry")
}

func (s *suite) testPTTL(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, key string)
		min, max time.Duration
	}{
		{
			name: "KeyWithExpiry",
			setup: func(t *testing.T, key string) {
				require.NoError(t, s.client.Set(clientCtx(t), key, "v", 10*time.Second).Err())
			},
			min: 9 * time.Second, max: 10 * time.Second,
		},
		{
			name: "KeyWithoutExpiryIsMinusOneMillisecond",
			setup: func(t *testing.T, key string) {
				require.NoError(t, s.client.Set(clientCtx(t), key, "v", 0).Err())
			},
			min: -time.Millisecond, max: -time.Millisecond,
		},
		{
			name:  "MissingKeyIsMinusTwoMilliseconds",
			setup: func(t *testing.T, key string) {},
			min:   -2 * time.Millisecond, max: -2 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t, key(t))
			ttl, err := s.conn(t).PTTL(key(t))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, ttl, tt.min)
			assert.LessOrEqual(t, ttl, tt.max)
		})
	}
}

func (s *suite) testEvalReplies(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		args  []any // after the key
		check func(t *testing.T, v any, err error)
	}{
		{
			name: "IntegerIsInt64",
			src:  `return redis.call("INCRBY", KEYS[1], ARGV[1])`,
			args: []any{5},
			check: func(t *testing.T, v any, err error) {
				require.NoError(t, err)
				assert.Equal(t, int64(5), v)
			},
		},
		{
			name: "BulkString",
			src:  `return ARGV[1]`,
			args: []any{"hello"},
			check: func(t *testing.T, v any, err error) {
				require.NoError(t, err)
				assert.Equal(t, "hello", bulkString(t, v))
			},
		},
		{
			name: "NilIsNilWithoutError",
			src:  `return redis.call("GET", KEYS[1])`,
			check: func(t *testing.T, v any, err error) {
				require.NoError(t, err)
				assert.Nil(t, v)
			},
		},
		{
			name: "ErrorReplyIsError",
			src:  `return redis.error_reply("BOOM the script failed")`,
			check: func(t *testing.T, v any, err error) {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "BOOM the script failed")
				assert.Nil(t, v, "no value alongside the error")
			},
		},
		{
			name: "RuntimeErrorIsError",
			src:  `return redis.call("INCR", KEYS[1], "too", "many")`,
			check: func(t *testing.T, v any, err error) {
				require.Error(t, err)
				assert.Nil(t, v, "no value alongside the error")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := redsyncredis.NewScript(1, tt.src, "")
			v, err := s.conn(t).Eval(script, append([]any{key(t)}, tt.args...)...)
			tt.check(t, v, err)
		})
	}
}

func (s *suite) testEvalKeysAndArgs(t *testing.T) {
	// The script shows what reached it: "KEYS|ARGV", comma-separated.
	const src = `return table.concat(KEYS, ",") .. "|" .. table.concat(ARGV, ",")`
	tests := []struct {
		name        string
		keyCount    int
		keysAndArgs []any
		want        string
	}{
		{"NoKeys", 0, []any{"a", "b"}, "|a,b"},
		{"OneKey", 1, []any{"k", "a", "b"}, "k|a,b"},
		{"TwoKeys", 2, []any{"k1", "k2", "a"}, "k1,k2|a"},
		{"OnlyKeys", 2, []any{"k1", "k2"}, "k1,k2|"},
		{"CountGivenFirst", -1, []any{1, "k", "a"}, "k|a"},
		{"CountGivenFirstTwoKeys", -1, []any{2, "k1", "k2", "a"}, "k1,k2|a"},
		{"NonStringKeyIsSentAsText", 1, []any{42, "a"}, "42|a"},
		{"ByteSliceKeyIsSentAsItsBytes", 1, []any{[]byte("k"), "a"}, "k|a"},
		{"IntegerArgIsSentAsText", 1, []any{"k", 1500}, "k|1500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := redsyncredis.NewScript(tt.keyCount, src, "")
			v, err := s.conn(t).Eval(script, tt.keysAndArgs...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, bulkString(t, v))
		})
	}
}

func (s *suite) testEvalBadKeyCount(t *testing.T) {
	const src = `return 1`
	tests := []struct {
		name        string
		keyCount    int
		keysAndArgs []any
	}{
		{"FewerKeysThanKeyCount", 2, []any{"k"}},
		{"CountMissing", -1, nil},
		{"CountNotAnInteger", -1, []any{"two", "k"}},
		{"CountBeyondArguments", -1, []any{3, "k"}},
		{"CountNegative", -1, []any{-1, "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := redsyncredis.NewScript(tt.keyCount, src, "")
			v, err := s.conn(t).Eval(script, tt.keysAndArgs...)
			assert.Error(t, err)
			assert.Nil(t, v)
		})
	}
}

// uniqueScript returns a one-key script that returns ARGV[1], with a source
// no other subtest uses, so that its presence in the script cache says
// something about this subtest alone.
func uniqueScript(t *testing.T) *redsyncredis.Script {
	return redsyncredis.NewScript(1, "-- "+t.Name()+"\nreturn ARGV[1]", "")
}

func (s *suite) scriptCached(t *testing.T, hash string) bool {
	t.Helper()
	exists, err := s.client.ScriptExists(clientCtx(t), hash).Result()
	require.NoError(t, err)
	require.Len(t, exists, 1)
	return exists[0]
}

func (s *suite) testEvalAfterScriptFlush(t *testing.T) {
	script := uniqueScript(t)
	c := s.conn(t)
	for i := 0; i < 2; i++ {
		require.NoError(t, s.client.ScriptFlush(clientCtx(t)).Err())
		require.False(t, s.scriptCached(t, sha1Hex(script.Src)))

		v, err := c.Eval(script, key(t), "after flush")
		require.NoError(t, err, "round %d", i)
		assert.Equal(t, "after flush", bulkString(t, v))
		assert.True(t, s.scriptCached(t, sha1Hex(script.Src)), "the EVAL fallback caches the script")
	}
}

func (s *suite) testEvalWrongHash(t *testing.T) {
	script := uniqueScript(t)
	script.Hash = strings.Repeat("0", 40)
	v, err := s.conn(t).Eval(script, key(t), "wrong hash")
	require.NoError(t, err)
	assert.Equal(t, "wrong hash", bulkString(t, v))
}

// testEvalWithoutHash: a Script made with an empty hash (redis.NewScript
// keeps it empty) is sent by EVALSHA of its source's SHA-1, and the Script
// is left as it was.
func (s *suite) testEvalWithoutHash(t *testing.T) {
	script := uniqueScript(t)
	require.Empty(t, script.Hash)
	require.NoError(t, s.client.ScriptLoad(clientCtx(t), script.Src).Err())
	require.NoError(t, s.client.ConfigResetStat(clientCtx(t)).Err())
	c := s.conn(t)
	for i := 0; i < 2; i++ {
		v, err := c.Eval(script, key(t), "no hash")
		require.NoError(t, err, "call %d", i+1)
		assert.Equal(t, "no hash", bulkString(t, v))
	}
	assert.Empty(t, script.Hash, "Eval leaves the Script as it was")
	stats, err := s.client.Info(clientCtx(t), "commandstats").Result()
	require.NoError(t, err)
	assert.Contains(t, stats, "cmdstat_evalsha:calls=2,", "both calls by EVALSHA")
	assert.NotContains(t, stats, "cmdstat_eval:", "no EVAL: the hash was right")
}

func (s *suite) testScriptLoad(t *testing.T) {
	src := uniqueScript(t).Src
	script := &redsyncredis.Script{KeyCount: 1, Src: src} // no Hash yet
	c := s.conn(t)
	require.NoError(t, c.ScriptLoad(script))
	assert.Equal(t, sha1Hex(src), script.Hash)
	assert.True(t, s.scriptCached(t, script.Hash))

	// The stored hash is the one EVALSHA wants, for any client.
	v, err := s.client.EvalSha(clientCtx(t), script.Hash, []string{key(t)}, "loaded").Result()
	require.NoError(t, err)
	assert.Equal(t, "loaded", v)

	v, err = c.Eval(script, key(t), "loaded")
	require.NoError(t, err)
	assert.Equal(t, "loaded", bulkString(t, v))
}

func (s *suite) testNilContext(t *testing.T) {
	var noCtx context.Context // the contract: nil means context.Background()
	c, err := s.pool.Get(noCtx)
	require.NoError(t, err)
	defer func() { assert.NoError(t, c.Close()) }()

	ok, err := c.Set(key(t), "v")
	require.NoError(t, err)
	assert.True(t, ok)
	value, err := c.Get(key(t))
	require.NoError(t, err)
	assert.Equal(t, "v", value)
}

// connectedClients returns the number of client connections the server has.
func (s *suite) connectedClients(t *testing.T) int {
	t.Helper()
	info, err := s.client.Info(clientCtx(t), "clients").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
			var n int
			_, err := fmt.Sscan(v, &n)
			require.NoError(t, err, "connected_clients: %q", v)
			return n
		}
	}
	t.Fatalf("INFO clients has no connected_clients:\n%s", info)
	return 0
}

func (s *suite) testClose(t *testing.T) {
	const rounds = 20
	before := s.connectedClients(t)
	for i := 0; i < rounds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		c, err := s.pool.Get(ctx)
		require.NoError(t, err)
		_, err = c.Get(key(t))
		require.NoError(t, err)
		assert.NoError(t, c.Close(), "Close")
		cancel()
	}
	// A Conn that kept its connection would leave one per round behind.
	assert.LessOrEqual(t, s.connectedClients(t), before+2,
		"%d Get/Close rounds must reuse (or close) connections", rounds)
}

// ops are the commands the context tests run; each touches key.
var ops = []struct {
	name   string
	writes bool // whether the command would create key
	run    func(c redsyncredis.Conn, key string) error
}{
	{"Get", false, func(c redsyncredis.Conn, key string) error {
		_, err := c.Get(key)
		return err
	}},
	{"Set", true, func(c redsyncredis.Conn, key string) error {
		_, err := c.Set(key, "v")
		return err
	}},
	{"SetNX", true, func(c redsyncredis.Conn, key string) error {
		_, err := c.SetNX(key, "v", 10*time.Second)
		return err
	}},
	{"PTTL", false, func(c redsyncredis.Conn, key string) error {
		_, err := c.PTTL(key)
		return err
	}},
	{"Eval", true, func(c redsyncredis.Conn, key string) error {
		_, err := c.Eval(redsyncredis.NewScript(1, `return redis.call("SET", KEYS[1], ARGV[1])`, ""), key, "v")
		return err
	}},
	{"ScriptLoad", false, func(c redsyncredis.Conn, key string) error {
		return c.ScriptLoad(redsyncredis.NewScript(1, "return 1", ""))
	}},
}

func (s *suite) testCancelledContext(t *testing.T) {
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := s.pool.Get(ctx)
			require.NoError(t, err)
			defer c.Close()

			cancel()
			start := time.Now()
			err = op.run(c, key(t))
			elapsed := time.Since(start)
			require.Error(t, err)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Less(t, elapsed, quick)
			if op.writes {
				n, err := s.client.Exists(clientCtx(t), key(t)).Result()
				require.NoError(t, err)
				assert.Zero(t, n, "a command with a cancelled context must not reach the server")
			}
		})
	}
}

func (s *suite) testGetCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	// An adapter may fail in Get or only in the first command.
	c, err := s.pool.Get(ctx)
	if err == nil {
		_, err = c.SetNX(key(t), "v", 10*time.Second)
		assert.NoError(t, c.Close())
	}
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "error %q should match context.Canceled", err)
	assert.Less(t, time.Since(start), quick)
}

func (s *suite) testDeadlineWhilePaused(t *testing.T) {
	// Leave a connection in the pool, so that the first command below
	// measures the command and not a dial.
	c, err := s.pool.Get(clientCtx(t))
	require.NoError(t, err)
	_, err = c.Get(key(t))
	require.NoError(t, err)
	require.NoError(t, c.Close())

	s.srv.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			s.srv.Resume(t)
		}
	}()
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), pausedDeadline)
			defer cancel()
			start := time.Now()
			c, err := s.pool.Get(ctx)
			if err == nil {
				err = op.run(c, key(t))
				c.Close()
			}
			elapsed := time.Since(start)
			require.Error(t, err, "the server is paused")
			t.Logf("after %v: %v", elapsed.Round(time.Millisecond), err)
			assert.Less(t, elapsed, pausedDeadline+deadlineSlack, "the context deadline must bound the command")
		})
	}

	s.srv.Resume(t)
	resumed = true
	// The pool recovers: connections broken by the timeouts are not reused.
	c = s.conn(t)
	ok, err := c.Set(key(t), "after resume")
	require.NoError(t, err)
	assert.True(t, ok)
	value, err := c.Get(key(t))
	require.NoError(t, err)
	assert.Equal(t, "after resume", value)
}
