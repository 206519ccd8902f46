
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
redis.call("HSET", KEYS[2], "lock", ARGV[1], "term", ARGV[2], "seq", ARGV[3], "value", ARGV[4])
redis.call("PEXPIRE", KEYS[2], ARGV[5])
redis.call("PUBLISH", KEYS[2], ARGV[2])
return 1
