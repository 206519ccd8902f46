
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
