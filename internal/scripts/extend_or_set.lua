
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
if current == false then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	return 2
end
return 0
