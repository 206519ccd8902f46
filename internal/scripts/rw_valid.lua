
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
	return 1
end
if current ~= ARGV[2] then
	return 0
end
local ends = tonumber(redis.call("HGET", KEYS[2], ARGV[1]))
local time = redis.call("TIME")
if ends and ends > tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) then
	return 1
end
return 0
