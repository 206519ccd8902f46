// Package hashslot tells which Redis Cluster hash slot a key (or a sharded
// pub/sub channel) belongs to, and whether a name can be wrapped in a hash
// tag ("{name}") to put other keys in the slot that name itself hashes to.
package hashslot

import "strings"

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// HasTag reports whether key's hash slot is decided by a hash tag: a
// non-empty part between the first "{" and the next "}".
func HasTag(key string) bool {
	_, ok := tag(key)
	return ok
}

// Wrappable reports whether "{"+name+"}" hashes to name's own slot, so
// that keys and channels built on it share the slot: true for a name with
// a hash tag (wrapping adds nothing, the caller keeps the name as it is)
// and for a name without any "}"; false for a name with a "}" but no tag,
// whose wrapped form would hash a prefix of it.
func Wrappable(name string) bool {
	return HasTag(name) || strings.IndexByte(name, '}') < 0
}

// Slot returns the hash slot of key, as Redis Cluster computes it: CRC16
// (XMODEM) of its hash tag, or of the whole key without one, mod Slots.
func Slot(key string) int {
	if t, ok := tag(key); ok {
		key = t
	}
	return int(crc16(key) % Slots)
}

// tag returns key's hash tag, if it has one.
func tag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return "", false
	}
	return key[open+1 : open+1+end], true
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the
// checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for bit := 0; bit < 8; bit++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
