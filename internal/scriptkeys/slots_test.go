package scriptkeys

import (
	"reflect"
	"testing"

	"github.com/quorumlock/redsync/internal/hashslot"
)

func TestBySlotGroupsKeysOfOneSlot(t *testing.T) {
	got := BySlot([]string{"{a}1", "foo", "{a}2"})
	want := [][]int{{0, 2}, {1}}
	if hashslot.Slot("foo") < hashslot.Slot("{a}1") {
		want = [][]int{{1}, {0, 2}}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BySlot = %v, want %v", got, want)
	}
}
