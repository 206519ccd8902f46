package fencing

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// clusterSlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of its hash tag, modulo 16384.
func clusterSlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

func TestClusterSlotMatchesRedis(t *testing.T) {
	// Slots given by CLUSTER KEYSLOT on a real server.
	assert.Equal(t, 12182, clusterSlot("foo"))
	assert.Equal(t, 5061, clusterSlot("bar"))
	assert.Equal(t, clusterSlot("user1000"), clusterSlot("{user1000}.following"))
}

func TestKeySharesTheLockKeysHashSlot(t *testing.T) {
	for _, name := range []string{"lock", "orders:42", "{orders}:42", "a{b}c", "{a", "a{", "payments{eu}{x}", "{eu}}"} {
		key := Key(name)
		assert.NotEqual(t, name, key)
		assert.True(t, strings.HasSuffix(key, Suffix), "name %q, counter %q", name, key)
		assert.Equal(t, clusterSlot(name), clusterSlot(key), "name %q, counter %q", name, key)
	}
	// A "}" without a hash tag before it cannot be matched: the cluster
	// refuses the script (the Problem CrossSlot).
	assert.Equal(t, "{a}b}"+Suffix, Key("a}b"))
	assert.NotEqual(t, clusterSlot("x{}y{z}"), clusterSlot(Key("x{}y{z}")))
	assert.Equal(t, "{orders}:42"+Suffix, Key("{orders}:42"))
	assert.Equal(t, "{lock}"+Suffix, Key("lock"))
}
