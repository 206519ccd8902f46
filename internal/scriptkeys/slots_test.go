package scriptkeys

import (
	"reflect"
	"testing"
)

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

func TestBySlotGroupsKeysOfOneSlot(t *testing.T) {
	got := BySlot([]string{"{a}1", "foo", "{a}2"})
	want := [][]int{{0, 2}, {1}}
	if Slot("foo") < Slot("{a}1") {
		want = [][]int{{1}, {0, 2}}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BySlot = %v, want %v", got, want)
	}
}
