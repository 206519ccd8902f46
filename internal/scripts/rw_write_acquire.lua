
if redis.replicate_commands then
	redis.replicate_commands()
end
-- rw_prune.lua
-- rw_counter.lua
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
	redis.call("PEXPIRE", KEYS[1], ARGV[2])
	return admitted()
end
if writer and writer ~= ARGV[1] then
	return 0
end
if current and current ~= ARGV[3] then
	return 0
end
if readers == 0 then
	redis.call("HDEL", KEYS[2], "redsync:writer", "redsync:intent")
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	return admitted()
end
redis.call("HSET", KEYS[2], "redsync:writer", ARGV[1], "redsync:intent", string.format("%.0f", now + tonumber(ARGV[2])))
redis.call("PEXPIRE", KEYS[2], math.max(latest - now, tonumber(ARGV[2])))
return 2
