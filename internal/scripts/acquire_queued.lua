
if redis.replicate_commands then
	redis.replicate_commands()
end
local mode = ARGV[5]
local counter = ""
if mode ~= "" then
	local kind = redis.call("TYPE", KEYS[4])["ok"]
	if kind == "string" then
		counter = redis.call("GET", KEYS[4])
	end
	if kind ~= "none" and (kind ~= "string" or #counter > 19 or not string.find(counter, "^%d+$")) then
		return -3
	end
end
local function held()
	if mode == "" then
		return redis.status_reply("OK")
	end
	local clock = redis.call("TIME")
	if mode ~= "1" then
		return {counter, clock[1], clock[2]}
	end
	local token = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
	local stored = tonumber(counter)
	if stored ~= nil and stored >= token then
		token = stored + 1
	end
	redis.call("SET", KEYS[4], string.format("%.0f", token), "PX", ARGV[6])
	return {token}
end
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
	redis.call("PEXPIRE", KEYS[1], ARGV[2])
	redis.call("ZREM", KEYS[2], ARGV[1])
	redis.call("HDEL", KEYS[3], ARGV[1])
	return held()
end
if current == false and redis.call("EXISTS", KEYS[2]) == 0 then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
	return held()
end
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = 0
if current == false then
	window = tonumber(redis.call("HGET", KEYS[3], "redsync:window") or "0") - now
end
if current == false and window <= 0 then
	local ahead = false
	while true do
		local head = redis.call("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")
		if #head == 0 or head[1] == ARGV[1] then
			break
		end
		local entry = redis.call("HGET", KEYS[3], head[1])
		local lease = entry and string.match(entry, "^%d+ (%d+) %d+")
		if lease and tonumber(lease) >= now then
			local score, mine = tonumber(head[2]), tonumber(ARGV[3])
			ahead = score < mine or (score == mine and head[1] < ARGV[1])
			break
		end
		redis.call("ZREM", KEYS[2], head[1])
		redis.call("HDEL", KEYS[3], head[1])
	end
	if not ahead then
		local set = redis.pcall("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
		if type(set) == "table" and set.err then
			return -1
		end
		redis.call("ZREM", KEYS[2], ARGV[1])
		redis.call("HDEL", KEYS[3], ARGV[1], "redsync:window")
		return held()
	end
end
local entry = redis.call("HGET", KEYS[3], ARGV[1])
local since = entry and string.match(entry, "^(%d+) ") or string.format("%.0f", now)
local lease = tonumber(ARGV[4])
local fenced = ""
if mode ~= "" then
	fenced = " f"
end
local set = redis.pcall("HSET", KEYS[3], ARGV[1], since .. " " .. string.format("%.0f", now + lease) .. " " .. ARGV[2] .. fenced)
if type(set) ~= "table" or not set.err then
	if type(redis.pcall("ZADD", KEYS[2], ARGV[3], ARGV[1])) == "table" then
		redis.call("HDEL", KEYS[3], ARGV[1])
	end
	redis.call("PEXPIRE", KEYS[2], 3 * lease)
	redis.call("PEXPIRE", KEYS[3], 3 * lease)
end
if window > 0 then
	return window
end
if current == false then
	return -1
end
return redis.call("PTTL", KEYS[1])
