-- KEYS are a semaphore's permit slots, then its fencing counter. As
-- permit_acquire.lua: sets the first ARGV[3] free slots, scanning from slot
-- ARGV[4] on, to the holder's value ARGV[1] with the expiry ARGV[2], or
-- none, replying how many are free; when it set them, it replies the
-- counter ("" for none), the server's TIME and the (1-based) slots set.
-- It replies -3, setting nothing, when the counter key holds something
-- that is not a counter.
-- counters.lua
local slots = #KEYS - 1
local want = tonumber(ARGV[3])
local start = tonumber(ARGV[4])
local free = {}
for k = 0, slots - 1 do
	local i = (start - 1 + k) % slots + 1
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
local highest = highestCounter(slots + 1)
if highest == nil then
	return -3
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
local now = redis.call("TIME")
local reply = {highest, now[1], now[2]}
for _, i in ipairs(free) do
	reply[#reply + 1] = i
end
return reply
