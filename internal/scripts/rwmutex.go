package scripts

import (
	_ "embed"
	"fmt"
	"strings"
)

// The scripts of an RWMutex. Every one takes
//
//	KEYS[1]  the lock key (the name): free, a writer's value, or the
//	         readers' mark while readers hold
//	KEYS[2]  the readers' hash, beside the lock key: reader value ->
//	         the server millisecond its entry ends; "redsync:writer" and
//	         "redsync:intent", the waiting writer's value and when its
//	         claim ends
//	ARGV[1]  the caller's value
//
// and begins by dropping the entries that ended (rw_prune.lua). A reader
// enters only when the key is free or marked for readers and no writer
// waits; it sets the mark with an expiry at least its own entry's, so the
// mark outlives every live reader. A writer sets the key only when no
// reader lives; while readers live it claims the turn instead (reply 2),
// which keeps new readers out until the claim ends or it is released.

//go:embed rw_prune.lua
var rwPruneLua string

const rwPruneLine = "-- rw_prune.lua\n"

func withRWPrune(src string) string {
	if strings.Count(src, rwPruneLine) != 1 {
		panic("scripts: an RWMutex script needs exactly one line " + strings.TrimSpace(rwPruneLine))
	}
	return strings.Replace(src, rwPruneLine, rwPruneLua, 1)
}

//go:embed rw_read_acquire.lua
var rwReadAcquireLua string

// RWReadAcquire admits a reader. ARGV[2] its expiry in milliseconds,
// ARGV[3] the readers' mark. Replies 1 admitted, 0 refused.
var RWReadAcquire = newScript(2, withRWPrune(rwReadAcquireLua))

//go:embed rw_read_release.lua
var rwReadReleaseLua string

// RWReadRelease removes a reader; the last one frees the key and
// announces it on ARGV[2]. ARGV[3] the readers' mark. Replies 1 when the
// reader was there, 0 otherwise.
var RWReadRelease = newScript(2, withRWPrune(rwReadReleaseLua))

//go:embed rw_write_acquire.lua
var rwWriteAcquireLua string

// RWWriteAcquire sets the key for a writer. ARGV[2] its expiry in
// milliseconds, ARGV[3] the readers' mark. Replies 1 set (or set already),
// 2 readers hold and the writer's turn is claimed, 0 refused.
var RWWriteAcquire = newScript(2, withRWPrune(rwWriteAcquireLua))

//go:embed rw_write_release.lua
var rwWriteReleaseLua string

// RWWriteRelease deletes the writer's key and claim, announcing a freed
// key on ARGV[2]. Replies 1 when it found either, 0 otherwise.
var RWWriteRelease = newScript(2, rwWriteReleaseLua)

// ParseRW returns the code an RWMutex script replied.
func ParseRW(name string, reply any) (int64, error) {
	n, ok := reply.(int64)
	if !ok || n < 0 || n > 2 {
		return 0, fmt.Errorf("scripts: %s: unexpected reply %v (%T)", name, reply, reply)
	}
	return n, nil
}
