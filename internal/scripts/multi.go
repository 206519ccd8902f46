package scripts

import (
	_ "embed"
	"fmt"
)

// The scripts of the MultiMutex and the Semaphore: each takes a variable
// number of keys (KeyCount -1: the count comes first among the arguments)
// and acts on all of them or none, atomically on one server.

//go:embed multi_acquire.lua
var multiAcquireLua string

//go:embed multi_release.lua
var multiReleaseLua string

//go:embed multi_extend.lua
var multiExtendLua string

//go:embed permit_acquire.lua
var permitAcquireLua string

// MultiAcquire sets every key to the holder's value with an expiry if no
// key exists, or none of them: SET NX on a set of keys, all or nothing. The
// keys are lock names as a Mutex uses them, so that a Mutex (or redsync) on
// one of them and a MultiMutex exclude each other.
//
//	KEYS     the lock keys
//	ARGV[1]  the holder's value
//	ARGV[2]  the expiry, in milliseconds
//
// Replies 0 when it set every key, or the 1-based index of the first key
// that exists (nothing was set). A SET refused (a server out of memory)
// deletes the keys set before it and fails the script.
var MultiAcquire = newScript(-1, multiAcquireLua)

// MultiRelease deletes every key that holds the holder's value, and
// announces the releases.
//
//	KEYS     the lock keys
//	ARGV[1]  the holder's value
//	ARGV[2]  the channel prefix (see handoff.ReleaseChannel)
//	ARGV[3]  "": each release is announced on ARGV[2] followed by its key,
//	         as a Mutex's is; otherwise once, on ARGV[2] followed by ARGV[3]
//	ARGV[4]  the sharded channel of ARGV[3] (see Release), or ""
//	ARGV[5]  the prefix of the sharded channel of a key without a hash
//	         tag (see handoff.ShardedReleaseChannel, whose rule the
//	         script follows for each key)
//
// Each announcement goes through publish.lua, as Release's do.
//
// Replies {released, missing, other} (see ParseMultiRelease).
var MultiRelease = newScript(-1, withPublish(multiReleaseLua))

// MultiExtend resets the expiry of every key if all of them hold the
// holder's value, or of none.
//
//	KEYS     the lock keys
//	ARGV[1]  the holder's value
//	ARGV[2]  the expiry, in milliseconds
//
// Replies 0 when it extended every key, i when KEYS[i] held another value,
// -i when KEYS[i] was missing (the first such key; nothing was extended).
var MultiExtend = newScript(-1, multiExtendLua)

// PermitAcquire takes permit slots of a semaphore: it sets the first free
// slots it finds, as many as asked, or none.
//
//	KEYS     the semaphore's permit slots, one key per permit
//	ARGV[1]  the holder's value
//	ARGV[2]  the expiry, in milliseconds
//	ARGV[3]  how many slots to take
//	ARGV[4]  the 1-based slot to start looking at (wrapping around)
//
// Replies an array of the 1-based indexes of the slots it set, or, when
// fewer slots were free than asked, their number (nothing was set). See
// ParsePermitAcquire.
var PermitAcquire = newScript(-1, permitAcquireLua)

// MultiReleaseReply is a reply of MultiRelease: how many keys it deleted,
// found missing, or found holding another value.
type MultiReleaseReply struct {
	Released, Missing, Other int
}

// ParseMultiRelease returns the reply of MultiRelease, or an error for a
// reply it never makes.
func ParseMultiRelease(reply any) (MultiReleaseReply, error) {
	a, ok := reply.([]any)
	if ok && len(a) == 3 {
		var n [3]int64
		for i, v := range a {
			if n[i], ok = v.(int64); !ok || n[i] < 0 {
				break
			}
		}
		if ok {
			return MultiReleaseReply{Released: int(n[0]), Missing: int(n[1]), Other: int(n[2])}, nil
		}
	}
	return MultiReleaseReply{}, fmt.Errorf("redsync: unexpected reply %#v to the multi-key release script", reply)
}

// ParseMultiIndex returns the reply of MultiAcquire or MultiExtend for
// keys keys, or an error (naming what) for a reply the script never makes.
func ParseMultiIndex(reply any, keys int, what string) (int, error) {
	if n, ok := reply.(int64); ok && n >= -int64(keys) && n <= int64(keys) {
		return int(n), nil
	}
	return 0, fmt.Errorf("redsync: unexpected reply %#v to the %s script", reply, what)
}

// ParsePermitAcquire returns the 0-based slots that PermitAcquire set,
// appended to dst, for slots permit slots and a weight of want; or, when
// it set none, free, the number of slots that were free. It returns an
// error for a reply the script never makes.
func ParsePermitAcquire(reply any, slots, want int, dst []int) (set []int, free int, err error) {
	switch r := reply.(type) {
	case int64:
		if r >= 0 && r < int64(want) {
			return dst, int(r), nil
		}
	case []any:
		if len(r) != want {
			break
		}
		for _, v := range r {
			i, ok := v.(int64)
			if !ok || i < 1 || i > int64(slots) {
				return dst, 0, fmt.Errorf("redsync: unexpected reply %#v to the permit acquire script", reply)
			}
			dst = append(dst, int(i-1))
		}
		return dst, want, nil
	}
	return dst, 0, fmt.Errorf("redsync: unexpected reply %#v to the permit acquire script", reply)
}
