
local current = redis.call("GET", KEYS[1])
if current == false or current == ARGV[3] then
	return redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
end
return redis.call("PTTL", KEYS[1])
