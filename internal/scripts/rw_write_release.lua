
if redis.replicate_commands then
	redis.replicate_commands()
end
-- publish.lua
local released = 0
if redis.call("HGET", KEYS[2], "redsync:writer") == ARGV[1] then
	redis.call("HDEL", KEYS[2], "redsync:writer", "redsync:intent")
	released = 1
end
if redis.call("GET", KEYS[1]) == ARGV[1] then
	redis.call("DEL", KEYS[1])
	released = 1
end
if released == 1 then
	publish(ARGV[2], ARGV[4], "")
end
return released
