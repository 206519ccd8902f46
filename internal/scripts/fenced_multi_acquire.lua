-- KEYS[1..ARGV[1]] are lock keys, the other KEYS their fencing counters.
-- Sets every lock key to the holder's value ARGV[2] with the expiry ARGV[3]
-- if none exists, and replies the highest counter ("" for none) and the
-- server's TIME; otherwise sets none and replies the (1-based) index of the
-- first lock key that exists, or -3, setting nothing, when a counter key
-- holds something that is not a counter.
-- counters.lua
local n = tonumber(ARGV[1])
for i = 1, n do
	if redis.call("EXISTS", KEYS[i]) == 1 then
		return i
	end
end
local highest = highestCounter(n + 1)
if highest == nil then
	return -3
end
for i = 1, n do
	local set = redis.pcall("SET", KEYS[i], ARGV[2], "PX", ARGV[3])
	if type(set) == "table" and set.err then
		for j = 1, i - 1 do
			redis.call("DEL", KEYS[j])
		end
		return redis.error_reply(set.err)
	end
end
local now = redis.call("TIME")
return {highest, now[1], now[2]}
