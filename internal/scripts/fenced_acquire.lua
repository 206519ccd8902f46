-- read_counter.lua

local current = redis.call("GET", KEYS[1])
if current == false or (ARGV[3] ~= "" and current == ARGV[3]) then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	local now = redis.call("TIME")
	return {counter, now[1], now[2]}
end
return redis.call("PTTL", KEYS[1])
