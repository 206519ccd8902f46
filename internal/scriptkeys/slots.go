package scriptkeys

import "sort"

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of its
// hash tag (the part between the first "{" and the next "}", when that
// part is not empty) or of the whole key, modulo 16384.
func Slot(key string) int {
	if open := indexByte(key, '{'); open >= 0 {
		if end := indexByte(key[open+1:], '}'); end > 0 {
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

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// BySlot groups the indexes of keys by hash slot: one group per slot, in
// the order of the slots, each in the order of keys.
func BySlot(keys []string) [][]int {
	bySlot := make(map[int][]int)
	var slots []int
	for i, k := range keys {
		s := Slot(k)
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
