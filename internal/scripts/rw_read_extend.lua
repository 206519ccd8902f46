
if redis.replicate_commands then
	redis.replicate_commands()
end
-- rw_prune.lua
if redis.call("HEXISTS", KEYS[2], ARGV[1]) == 0 or redis.call("GET", KEYS[1]) ~= ARGV[3] then
	return 0
end
local ends = now + tonumber(ARGV[2])
redis.call("HSET", KEYS[2], ARGV[1], string.format("%.0f", ends))
if ends > latest then
	latest = ends
end
redis.call("PEXPIRE", KEYS[1], latest - now)
redis.call("PEXPIRE", KEYS[2], math.max(latest, intent) - now)
return 1
