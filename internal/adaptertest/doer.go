package adaptertest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	redsyncredis "github.com/quorumlock/redsync/redis"
)

// doer returns a connection of the pool as a redis.Doer, failing the test
// when the adapter's Conn does not implement it.
func (s *suite) doer(t *testing.T) redsyncredis.Doer {
	t.Helper()
	d, ok := s.conn(t).(redsyncredis.Doer)
	require.True(t, ok, "the adapter's Conn must implement redis.Doer")
	return d
}

func (s *suite) testDoReplies(t *testing.T) {
	d := s.doer(t)
	reply, err := d.Do("SET", key(t), "v1")
	require.NoError(t, err)
	assert.Equal(t, "OK", bulkString(t, reply), "a status reply")

	reply, err = d.Do("GET", key(t))
	require.NoError(t, err)
	assert.Equal(t, "v1", bulkString(t, reply), "a bulk string reply")

	reply, err = d.Do("GET", key(t)+":missing")
	require.NoError(t, err, "a nil reply is not an error")
	assert.Nil(t, reply)

	reply, err = d.Do("STRLEN", key(t))
	require.NoError(t, err)
	assert.Equal(t, int64(2), reply, "an integer reply")

	reply, err = d.Do("TIME")
	require.NoError(t, err)
	parts, ok := reply.([]any)
	require.True(t, ok, "TIME replies with an array, got %T", reply)
	require.Len(t, parts, 2)
	assert.NotEmpty(t, bulkString(t, parts[0]))

	reply, err = d.Do("INFO", "server")
	require.NoError(t, err)
	assert.Contains(t, bulkString(t, reply), "run_id:")

	// An array (RESP2) or a map (RESP3), as the client library returns it.
	reply, err = d.Do("CONFIG", "GET", "maxmemory-policy")
	require.NoError(t, err)
	switch v := reply.(type) {
	case []any:
		require.Len(t, v, 2)
		assert.Equal(t, "noeviction", bulkString(t, v[1]))
	case map[string]any:
		assert.Equal(t, "noeviction", bulkString(t, v["maxmemory-policy"]))
	case map[any]any:
		assert.Equal(t, "noeviction", bulkString(t, v["maxmemory-policy"]))
	default:
		t.Fatalf("CONFIG GET replied %T (%#v), want an array or a map", reply, reply)
	}
}

func (s *suite) testDoErrors(t *testing.T) {
	d := s.doer(t)
	_, err := d.Do("NOSUCHCOMMAND")
	require.Error(t, err, "an error reply")
	assert.Contains(t, err.Error(), "unknown command")

	_, err = d.Do()
	assert.Error(t, err, "no command at all")

	ctx, cancel := context.WithCancel(context.Background())
	c, err := s.pool.Get(ctx)
	require.NoError(t, err)
	defer c.Close()
	cancel()
	_, err = c.(redsyncredis.Doer).Do("SET", key(t), "v")
	assert.True(t, errors.Is(err, context.Canceled), "error %v should match context.Canceled", err)
	n, err := s.client.Exists(clientCtx(t), key(t)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a command with a cancelled context must not reach the server")
}
