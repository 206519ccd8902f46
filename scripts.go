package redsync

import "github.com/quorumlock/redsync/redis"

// The scripts keep redsync v4's meaning on the key, so that a service on
// redsync and one on this library exclude each other on the same name.

// releaseScript releases KEYS[1] if it holds ARGV[1] (the lock value) and
// announces it on the channel ARGV[2]. When the announcement reached more
// listeners than ARGV[5] (the subscriptions of the releaser's own process
// that no waiter there wants any more, or -1 for a release that is never
// to reserve the key: the clean-up of a failed attempt), the key is not
// deleted but set to the placeholder ARGV[3] for ARGV[4] milliseconds,
// which only a waiter's acquire (acquireAfterWaitScript) takes over: those
// who waited go first. A server out of memory (maxmemory with noeviction)
// refuses the SET: the key is then deleted, as redsync's release does.
// Reply: 1 released, 0 the key holds another value, -1 the key is missing.
var releaseScript = redis.NewScript(1, `
local current = redis.call("GET", KEYS[1])
if current == false then
	return -1
end
if current ~= ARGV[1] then
	return 0
end
local heard = redis.call("PUBLISH", ARGV[2], "")
local stale = tonumber(ARGV[5])
if stale >= 0 and heard > stale then
	local set = redis.pcall("SET", KEYS[1], ARGV[3], "PX", ARGV[4])
	if type(set) == "table" and set.err then
		redis.call("DEL", KEYS[1])
	end
else
	redis.call("DEL", KEYS[1])
end
return 1
`, "")

// acquireAfterWaitScript sets KEYS[1] to ARGV[1] for ARGV[2] milliseconds
// if the key is missing or holds the hand-off placeholder ARGV[3]. Reply:
// OK when set, else the key's remaining time to live in milliseconds (-1
// when it has no expiry).
var acquireAfterWaitScript = redis.NewScript(1, `
local current = redis.call("GET", KEYS[1])
if current == false or current == ARGV[3] then
	return redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
end
return redis.call("PTTL", KEYS[1])
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
// the expiry when the key is missing (WithSetNXOnExtend). Reply: 1
// extended, 2 set (the key was missing), 0 the key holds another value.
var extendOrSetScript = redis.NewScript(1, `
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
if current == false then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	return 2
end
return 0
`, "")

// handOverScript is releaseScript that hands the lock over to a waiter of
// the releaser's process: when nobody but that process listens on the
// channel ARGV[2], KEYS[1] is set from ARGV[1] (the releaser's value)
// straight to ARGV[5] (the waiter's) for ARGV[6] milliseconds, and nothing
// is announced; otherwise it releases as releaseScript does, so that
// waiters of other processes get their turn; a server out of memory
// refuses either SET, and then the key is deleted (and, when the hand-over
// failed that way, nothing announced: the waiter of this process is told
// by its releaser). Reply: 2 handed over (also
// when the key holds ARGV[5] already: a request sent again), 1 released,
// 0 the key holds another value, -1 the key is missing.
//
// PUBSUB NUMSUB is a non-deterministic command: Redis before 5 replicates
// a script that writes after one only as its effects, which
// redis.replicate_commands asks for (a no-op since Redis 7).
var handOverScript = redis.NewScript(1, `
local current = redis.call("GET", KEYS[1])
if current == ARGV[5] then
	return 2
end
if current == false then
	return -1
end
if current ~= ARGV[1] then
	return 0
end
if redis.replicate_commands then
	redis.replicate_commands()
end
if redis.call("PUBSUB", "NUMSUB", ARGV[2])[2] <= 1 then
	local set = redis.pcall("SET", KEYS[1], ARGV[5], "PX", ARGV[6])
	if type(set) ~= "table" or not set.err then
		return 2
	end
	redis.call("DEL", KEYS[1])
	return 1
end
redis.call("PUBLISH", ARGV[2], "")
local set = redis.pcall("SET", KEYS[1], ARGV[3], "PX", ARGV[4])
if type(set) == "table" and set.err then
	redis.call("DEL", KEYS[1])
end
return 1
`, "")
