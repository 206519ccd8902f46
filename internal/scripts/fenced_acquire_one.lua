
redis.replicate_commands()
-- read_counter.lua

local current = redis.call("GET", KEYS[1])
if current == false or (ARGV[3] ~= "" and current == ARGV[3]) then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	local now = redis.call("TIME")
	local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
	local stored = tonumber(counter)
	if stored ~= nil and stored >= token then
		token = stored + 1
	end
	redis.call("SET", KEYS[2], string.format("%.0f", token), "PX", ARGV[4])
	return {token}
end
return redis.call("PTTL", KEYS[1])
