
if redis.replicate_commands then
	redis.replicate_commands()
end
-- publish.lua
local removed = redis.call("HDEL", KEYS[2], ARGV[1])
-- rw_prune.lua
if readers == 0 and redis.call("GET", KEYS[1]) == ARGV[3] then
	redis.call("DEL", KEYS[1])
	publish(ARGV[2], ARGV[4], "")
	if removed == 1 then
		return 2
	end
end
return removed
