package scriptkeys

import (
	"sort"

	"github.com/quorumlock/redsync/internal/hashslot"
)

// BySlot groups the indexes of keys by hash slot (hashslot.Slot): one
// group per slot, in the order of the slots, each in the order of keys.
func BySlot(keys []string) [][]int {
	bySlot := make(map[int][]int)
	var slots []int
	for i, k := range keys {
		s := hashslot.Slot(k)
		if _, ok := bySlot[s]; !ok {
			slots = append(slots, s)
		}
		bySlot[s] = append(bySlot[s], i)
	}
	sort.Ints(slots)
	groups := make([][]int, len(slots))
	for i, s := range slots {
		groups[i] = bySlot[s]
	}
	return groups
}
