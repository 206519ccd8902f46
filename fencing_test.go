package redsync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFencingSmoke(t *testing.T) {
	_, pools := miniPools(t, 3)
	rs := New(pools...)
	defer rs.Wait()
	var last uint64
	for i := 0; i < 5; i++ {
		m := rs.NewMutex("smoke", WithFencing(true))
		require.NoError(t, m.Lock())
		tok := m.Token()
		t.Log(tok)
		require.Greater(t, tok, last)
		last = tok
		ok, err := m.Unlock()
		require.True(t, ok)
		require.NoError(t, err)
	}
}
