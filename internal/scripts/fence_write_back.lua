-- read_counter.lua

if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
if counter == "" or tonumber(counter) < tonumber(ARGV[2]) then
	redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3])
else
	redis.call("PEXPIRE", KEYS[2], ARGV[3])
end
return 1
