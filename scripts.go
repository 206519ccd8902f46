package redsync

import "github.com/quorumlock/redsync/redis"

// The scripts keep redsync v4's meaning on the key, so that a service on
// redsync and one on this library exclude each other on the same name.

// releaseScript deletes KEYS[1] if it holds ARGV[1] (the lock value).
// Reply: 1 deleted, 0 the key holds another value, -1 the key is missing.
var releaseScript = redis.NewScript(1, `
local current = redis.call("GET", KEYS[1])
if current == false then
	return -1
end
if current ~= ARGV[1] then
	return 0
end
return redis.call("DEL", KEYS[1])
`, "")

// extendScript resets the expiry of KEYS[1] to ARGV[2] milliseconds if it
// holds ARGV[1]. Reply: 1 extended, 0 missing or another value.
var extendScript = redis.NewScript(1, `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
return redis.call("PEXPIRE", KEYS[1], ARGV[2])
`, "")

// extendOrSetScript is extendScript that also sets KEYS[1] to ARGV[1] with
// the expiry when the key is missing (WithSetNXOnExtend). Reply: 1 extended
// or set, 0 the key holds another value.
var extendOrSetScript = redis.NewScript(1, `
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
if current == false then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	return 1
end
return 0
`, "")
