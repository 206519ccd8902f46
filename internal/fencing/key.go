package fencing

import (
	"time"

	"github.com/quorumlock/redsync/internal/hashslot"
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
	if hashslot.HasTag(name) {
		return name + Suffix
	}
	return "{" + name + "}" + Suffix
}
