package scripts

import _ "embed"

//go:embed check.lua
var checkLua string

// Check reads the server's clock or its INFO: the script Check (of the
// root package) runs to see that the server runs scripts, and its way to
// ask a Conn that cannot send a command of its own.
//
//	ARGV[1]  "time" for TIME (an array of seconds and microseconds, as
//	         strings); anything else for INFO (a bulk string)
//
// It takes no keys, and replies what the command replied.
var Check = newScript(0, checkLua)
