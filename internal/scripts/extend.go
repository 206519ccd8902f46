package scripts

import (
	_ "embed"
	"fmt"
)

//go:embed extend.lua
var extendLua string

//go:embed extend_or_set.lua
var extendOrSetLua string

// Extend resets the lock key's expiry if it holds the holder's value.
//
//	KEYS[1]  the lock key
//	ARGV[1]  the holder's value
//	ARGV[2]  the new expiry, in milliseconds
//
// Replies (see ParseExtend): ExtendExtended, ExtendRefused (the key is
// missing or holds another value).
var Extend = newScript(1, extendLua)

// ExtendOrSet is Extend that also sets the key to ARGV[1] with the expiry
// when it is missing (WithSetNXOnExtend). KEYS and ARGV as Extend's.
//
// Replies (see ParseExtend): ExtendExtended, ExtendSet (the key was
// missing), ExtendRefused (the key holds another value).
var ExtendOrSet = newScript(1, extendOrSetLua)

// ExtendReply is a reply of Extend or ExtendOrSet.
type ExtendReply int64

// The replies of Extend and ExtendOrSet.
const (
	// ExtendRefused: nothing was done (for Extend, the key is missing or
	// holds another value; for ExtendOrSet, it holds another value).
	ExtendRefused ExtendReply = 0
	// ExtendExtended: the key held the value; its expiry was reset.
	ExtendExtended ExtendReply = 1
	// ExtendSet: the key was missing and ExtendOrSet set it.
	ExtendSet ExtendReply = 2
)

// ParseExtend returns the reply of Extend or ExtendOrSet, or an error for
// a reply neither makes. It takes ExtendSet from either script.
func ParseExtend(reply any) (ExtendReply, error) {
	if n, ok := reply.(int64); ok && n >= int64(ExtendRefused) && n <= int64(ExtendSet) {
		return ExtendReply(n), nil
	}
	return 0, fmt.Errorf("redsync: unexpected reply %#v to the extend script", reply)
}
