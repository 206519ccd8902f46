
if redis.replicate_commands then
	redis.replicate_commands()
end
-- rw_prune.lua
-- rw_counter.lua
local current = redis.call("GET", KEYS[1])
if current and current ~= ARGV[3] then
	return 0
end
if writer then
	return 0
end
local expiry = tonumber(ARGV[2])
redis.call("HSET", KEYS[2], ARGV[1], string.format("%.0f", now + expiry))
if now + expiry > latest then
	latest = now + expiry
end
redis.call("SET", KEYS[1], ARGV[3], "PX", latest - now)
redis.call("PEXPIRE", KEYS[2], latest - now)
return admitted()
