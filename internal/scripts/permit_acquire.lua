-- KEYS are a semaphore's permit slots. Sets the first ARGV[3] slots that
-- do not exist, scanning from slot ARGV[4] (1-based) on and wrapping
-- around, to the holder's value with the expiry, and replies their
-- (1-based) indexes; when fewer are free, sets none and replies how many
-- are.
local want = tonumber(ARGV[3])
local start = tonumber(ARGV[4])
local free = {}
for k = 0, #KEYS - 1 do
	local i = (start - 1 + k) % #KEYS + 1
	if redis.call("EXISTS", KEYS[i]) == 0 then
		free[#free + 1] = i
		if #free == want then
			break
		end
	end
end
if #free < want then
	return #free
end
for j, i in ipairs(free) do
	local set = redis.pcall("SET", KEYS[i], ARGV[1], "PX", ARGV[2])
	if type(set) == "table" and set.err then
		for k = 1, j - 1 do
			redis.call("DEL", KEYS[free[k]])
		end
		return redis.error_reply(set.err)
	end
end
return free
