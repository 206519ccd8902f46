// Package scripthash gives the adapters the SHA-1 that EVALSHA wants for a
// script whose Hash is empty. redis.NewScript keeps the fields it is given,
// as redsync's does, so a script made with an empty hash reaches an
// adapter's Eval without one; the hash is then computed once per source
// and remembered, not once per call.
package scripthash

import (
	"crypto/sha1"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// maxRemembered bounds how many sources are remembered, so that a program
// that makes a new script text per call cannot grow the cache without
// end; past it, the hash of a new source is computed on every call.
const maxRemembered = 256

var (
	// remembered maps a script source to its hex SHA-1.
	remembered sync.Map
	// count is the number of entries in remembered (an upper bound: two
	// goroutines storing the same source both count).
	count atomic.Int32
)

// Of returns hash when it is not empty, and otherwise the lowercase hex
// SHA-1 of src. It is safe for concurrent use.
func Of(src, hash string) string {
	if hash != "" {
		return hash
	}
	if h, ok := remembered.Load(src); ok {
		return h.(string)
	}
	h := Compute(src)
	if count.Add(1) <= maxRemembered {
		remembered.Store(src, h)
	} else {
		count.Add(-1)
	}
	return h
}

// Compute returns the lowercase hex SHA-1 of src, as EVALSHA and SCRIPT
// LOAD name a script.
func Compute(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}
