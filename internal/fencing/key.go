package fencing

import (
	"strings"
	"time"
)

// Suffix ends the name of the counter key of fencing tokens.
const Suffix = ":redsync:fence"

// CounterTTL is how long a counter lives after its last write-back.
const CounterTTL = 24 * time.Hour

// Key returns the key of the fencing counter of the lock named name:
// name+Suffix when name has a Redis Cluster hash tag, "{"+name+"}"+Suffix
// otherwise, so that the counter is in the lock key's hash slot whenever
// that is possible. A name with "}" but no hash tag cannot share its slot
// with any key that ends in Suffix; a cluster refuses the scripts on the
// two keys then (see Problem CrossSlot).
func Key(name string) string {
	if hasHashTag(name) {
		return name + Suffix
	}
	return "{" + name + "}" + Suffix
}

// hasHashTag reports whether key's Redis Cluster hash slot is decided by a
// hash tag: a non-empty part between the first "{" and the next "}".
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}
