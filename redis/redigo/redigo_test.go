package redigo_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/adaptertest"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/redigo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T, addr string) redsyncredis.Pool {
		pool := &redis.Pool{
			MaxIdle: 4,
			DialContext: func(ctx context.Context) (redis.Conn, error) {
				// The read timeout only turns a hang into a failure if
				// the adapter ever stops bounding commands by the context.
				return redis.DialContext(ctx, "tcp", addr, redis.DialReadTimeout(5*time.Second))
			},
		}
		t.Cleanup(func() { _ = pool.Close() })
		return redigo.NewPool(pool)
	})
}

func TestGetWithNilContextReportsDialError(t *testing.T) {
	// A port nobody listens on: bind one, then free it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	defer pool.Close()

	var noCtx context.Context
	conn, err := redigo.NewPool(pool).Get(noCtx)
	require.Error(t, err, "the dial error behind the pool's error connection")
	assert.Nil(t, conn)
}

// fakeConn answers every command with a fixed reply. It does not implement
// redis.ConnWithContext.
type fakeConn struct {
	reply any
	err   error
}

func (c *fakeConn) Close() error                   { return nil }
func (c *fakeConn) Err() error                     { return nil }
func (c *fakeConn) Do(string, ...any) (any, error) { return c.reply, c.err }
func (c *fakeConn) Send(string, ...any) error      { return nil }
func (c *fakeConn) Flush() error                   { return nil }
func (c *fakeConn) Receive() (any, error)          { return c.reply, c.err }

// fakePool hands out one fakeConn.
type fakePool struct{ conn *fakeConn }

func (p *fakePool) Get() redis.Conn                                { return p.conn }
func (p *fakePool) GetContext(context.Context) (redis.Conn, error) { return p.conn, nil }

func TestScriptLoadAcceptsBulkStringsAndRejectsOtherReplies(t *testing.T) {
	const hash = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
	tests := []struct {
		name    string
		reply   any
		wantErr string // empty: success
	}{
		{"ByteSlice", []byte(hash), ""},
		{"String", hash, ""},
		{"Integer", int64(1), "int64"},
		{"Nil", nil, "<nil>"},
		{"Array", []any{[]byte(hash)}, "[]interface {}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := redigo.NewPool(&fakePool{conn: &fakeConn{reply: tt.reply}})
			conn, err := pool.Get(context.Background())
			require.NoError(t, err)
			script := &redsyncredis.Script{KeyCount: 1, Src: "return 1"}
			err = conn.ScriptLoad(script)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, hash, script.Hash)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr, "the error says what came back")
			assert.Empty(t, script.Hash)
		})
	}
}

func TestCancellableContextNeedsConnWithContext(t *testing.T) {
	pool := redigo.NewPool(&fakePool{conn: &fakeConn{reply: "OK"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := pool.Get(ctx)
	require.NoError(t, err)
	_, err = conn.Set("k", "v")
	require.Error(t, err, "a command that cannot be bounded by its context must not run unbounded")
	assert.Contains(t, err.Error(), "ConnWithContext")
}
