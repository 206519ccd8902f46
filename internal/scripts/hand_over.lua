
local current = redis.call("GET", KEYS[1])
if current == ARGV[5] then
	return 2
end
if current == false then
	return -1
end
if current ~= ARGV[1] then
	return 0
end
if redis.replicate_commands then
	redis.replicate_commands()
end
if redis.call("PUBSUB", "NUMSUB", ARGV[2])[2] <= 1 then
	local set = redis.pcall("SET", KEYS[1], ARGV[5], "PX", ARGV[6])
	if type(set) ~= "table" or not set.err then
		return 2
	end
	redis.call("DEL", KEYS[1])
	return 1
end
redis.call("PUBLISH", ARGV[2], "")
local set = redis.pcall("SET", KEYS[1], ARGV[3], "PX", ARGV[4])
if type(set) == "table" and set.err then
	redis.call("DEL", KEYS[1])
end
return 1
