
if redis.replicate_commands then
	redis.replicate_commands()
end
if KEYS[3] ~= KEYS[1] then
	redis.call("ZREM", KEYS[2], ARGV[1])
	redis.call("HDEL", KEYS[3], ARGV[1])
end
local queued = KEYS[3] ~= KEYS[1] and redis.call("EXISTS", KEYS[3]) == 1
local current = redis.call("GET", KEYS[1])
if current == false then
	return -1
end
if current ~= ARGV[1] then
	return 0
end
if queued and redis.call("ZCARD", KEYS[2]) > 0 then
	local time = redis.call("TIME")
	local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
	local run = tonumber(redis.call("HGET", KEYS[3], "redsync:run") or "")
	local slot = string.format("%.0f", math.floor(now / tonumber(ARGV[3])))
	if run == nil then
		redis.call("HSET", KEYS[3], "redsync:run", string.format("%.0f", now))
	elseif now - run >= tonumber(ARGV[3]) and redis.call("HGET", KEYS[3], "redsync:served") ~= slot then
		redis.call("HSET", KEYS[3], "redsync:served", slot, "redsync:window", string.format("%.0f", now + tonumber(ARGV[4])))
		redis.call("DEL", KEYS[1])
		redis.call("PUBLISH", ARGV[2], "")
		return 1
	end
	while true do
		local head = redis.call("ZRANGE", KEYS[2], 0, 0)
		if #head == 0 then
			break
		end
		local waiter = head[1]
		local entry = redis.call("HGET", KEYS[3], waiter)
		redis.call("ZREM", KEYS[2], waiter)
		redis.call("HDEL", KEYS[3], waiter)
		if entry then
			local since, lease, expiry, fenced = string.match(entry, "^(%d+) (%d+) (%d+)( ?f?)$")
			if lease and tonumber(lease) >= now then
				local set = redis.pcall("SET", KEYS[1], waiter, "PX", expiry)
				if type(set) == "table" and set.err then
					break
				end
				local waited = string.format("%.0f", now - tonumber(since))
				if fenced == " f" then
					local floor = tonumber(time[1]) * 1000000 + tonumber(time[2])
					local stored = redis.pcall("GET", KEYS[4])
					stored = type(stored) == "string" and string.find(stored, "^%d+$") and tonumber(stored)
					if stored and stored >= floor then
						floor = stored + 1
					end
					redis.call("PUBLISH", ARGV[2], "f" .. waited .. "," .. string.format("%.0f", floor) .. ":" .. waiter)
				else
					redis.call("PUBLISH", ARGV[2], "h" .. waited .. ":" .. waiter)
				end
				return 2
			end
		end
	end
end
if queued then
	redis.call("HDEL", KEYS[3], "redsync:run", "redsync:served", "redsync:window")
end
redis.call("DEL", KEYS[1])
redis.call("PUBLISH", ARGV[2], "")
return 1
