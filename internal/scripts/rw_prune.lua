local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local readers, latest, intent = 0, 0, 0
local fields = redis.call("HGETALL", KEYS[2])
for i = 1, #fields, 2 do
	local f, ends = fields[i], tonumber(fields[i + 1])
	if f == "redsync:writer" then
	elseif f == "redsync:intent" then
		if ends == nil or ends <= now then
			redis.call("HDEL", KEYS[2], "redsync:writer", "redsync:intent")
		else
			intent = ends
		end
	elseif ends == nil or ends <= now then
		redis.call("HDEL", KEYS[2], f)
	else
		readers = readers + 1
		if ends > latest then
			latest = ends
		end
	end
end
local writer = redis.call("HGET", KEYS[2], "redsync:writer")
