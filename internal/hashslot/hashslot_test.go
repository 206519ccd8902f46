package hashslot

import (
	"context"
	"fmt"
	"testing"

	"github.com/quorumlock/redsync/internal/redistest"
)

func TestHasTagAndWrappable(t *testing.T) {
	for _, tt := range []struct {
		key            string
		tag, wrappable bool
	}{
		{"lock", false, true},
		{"{user1}:lock", true, true},
		{"a{b}c", true, true},
		{"{}lock", false, false}, // "{{}lock}" has an empty tag
		{"{}lock}", false, false},
		{"a}b", false, false},
		{"a}{b}", true, true},
		{"{", false, true},
		{"", false, true},
	} {
		if got := HasTag(tt.key); got != tt.tag {
			t.Errorf("HasTag(%q) = %v, want %v", tt.key, got, tt.tag)
		}
		if got := Wrappable(tt.key); got != tt.wrappable {
			t.Errorf("Wrappable(%q) = %v, want %v", tt.key, got, tt.wrappable)
		}
	}
}

func TestSlotOfKnownKeys(t *testing.T) {
	// From the Redis Cluster specification: CRC16 of "123456789" is 0x31C3.
	if got := crc16("123456789"); got != 0x31c3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	if Slot("{user1000}.following") != Slot("{user1000}.followers") {
		t.Error("keys with one hash tag hash to different slots")
	}
	if Slot("foo{}{bar}") != int(crc16("foo{}{bar}")%Slots) {
		t.Error("an empty tag must make the whole key hash")
	}
}

// TestSlotAgreesWithRedis compares Slot with CLUSTER KEYSLOT of a real
// server in cluster mode.
func TestSlotAgreesWithRedis(t *testing.T) {
	c := redistest.StartCluster(t, 1)
	client := c.Masters[0].Client(t)
	keys := []string{"", "lock", "{lock}", "redsync:released{lock}", "{a}b", "a{b}c{d}", "{}x", "x}y", "{{a}}", "é{ü}"}
	for i := 0; i < 200; i++ {
		keys = append(keys, fmt.Sprintf("name-%d", i))
	}
	for _, key := range keys {
		want, err := client.ClusterKeySlot(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(key); int64(got) != want {
			t.Errorf("Slot(%q) = %d, Redis says %d", key, got, want)
		}
	}
}

func TestSlotIsRedisClustersHashSlot(t *testing.T) {
	// Slots as CLUSTER KEYSLOT replies them.
	for key, want := range map[string]int{
		"foo":       12182,
		"bar":       5061,
		"123456789": 12739,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if Slot("{user1000}.following") != Slot("user1000") || Slot("x{foo}y") != Slot("foo") {
		t.Error("a hash tag is not what is hashed")
	}
	if Slot("foo{}{bar}") == Slot("bar") && Slot("foo{}{bar}") == Slot("") {
		t.Error("an empty hash tag hashes the whole key")
	}
}
