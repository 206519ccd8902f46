-- KEYS[1..ARGV[1]] are lock keys, the other KEYS fencing counters. If
-- every lock key holds the holder's value ARGV[2], raises every counter to
-- the token ARGV[3] (decimal) and keeps it for ARGV[4] milliseconds, and
-- replies 1; replies 0 when a lock key does not hold the value, -3 when a
-- counter key holds something that is not a counter (nothing written).
-- counters.lua
local n = tonumber(ARGV[1])
for i = 1, n do
	if redis.call("GET", KEYS[i]) ~= ARGV[2] then
		return 0
	end
end
if highestCounter(n + 1) == nil then
	return -3
end
for i = n + 1, #KEYS do
	local c = redis.call("GET", KEYS[i])
	if c == false or tonumber(c) < tonumber(ARGV[3]) then
		redis.call("SET", KEYS[i], ARGV[3], "PX", ARGV[4])
	else
		redis.call("PEXPIRE", KEYS[i], ARGV[4])
	end
end
return 1
