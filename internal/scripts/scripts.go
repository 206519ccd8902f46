// Package scripts holds the Lua scripts the lock runs on each server, with
// the codes they reply and the parsers that turn a reply into a typed
// value.
//
// Every script is a .lua file of this package, embedded and sent byte for
// byte as the file holds it (its leading blank line included), so that its
// SHA-1, computed once when the package starts, stays the one EVALSHA
// finds in the servers' script caches; a test pins each hash. The fencing
// scripts begin with read_counter.lua, put in place of their line
// "-- read_counter.lua", and the release script with publish.lua in place
// of its line "-- publish.lua".
//
// The scripts keep redsync v4's meaning on the lock key (the key is the
// mutex name, its value the holder's random value), so that a service on
// redsync and one on this library exclude each other on the same name. Any
// other state (the hand-off placeholder, the fencing counter) is a value
// redsync never writes, or a key beside the lock key.
//
// A parser returns an error, naming the script, for a reply the script
// never makes: a server (or a Pool) that did not run it has not done what
// it does.
package scripts

import (
	_ "embed"
	"strings"

	"github.com/quorumlock/redsync/internal/scripthash"
	"github.com/quorumlock/redsync/redis"
)

// newScript is redis.NewScript with the hash of src, computed once, when
// the package starts: a Pool of the user's own may use the hash as it
// comes (redis.NewScript, like redsync's, keeps an empty hash empty).
func newScript(keyCount int, src string) *redis.Script {
	return redis.NewScript(keyCount, src, scripthash.Compute(src))
}

// publishLine is the line of a script that publishLua replaces.
const publishLine = "-- publish.lua\n"

//go:embed publish.lua
var publishLua string

// withPublish returns src with its line publishLine replaced by
// publishLua. It panics, when the package starts, for a src without
// exactly one such line.
func withPublish(src string) string {
	return withSnippet(src, publishLine, publishLua)
}

// withSnippet returns src with its line line replaced by snippet, and
// panics for a src without exactly one such line.
func withSnippet(src, line, snippet string) string {
	if strings.Count(src, line) != 1 {
		panic("scripts: a script needs exactly one line " + strings.TrimSpace(line))
	}
	return strings.Replace(src, line, snippet, 1)
}

// readCounterLine is the line of a fencing script that readCounterLua
// replaces.
const readCounterLine = "-- read_counter.lua\n"

// withReadCounter returns src with its line readCounterLine replaced by
// readCounterLua. It panics, when the package starts, for a src without
// exactly one such line.
func withReadCounter(src string) string {
	return withSnippet(src, readCounterLine, readCounterLua)
}
