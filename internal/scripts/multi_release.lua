-- Deletes every key that holds the holder's value and announces the
-- release on the channel ARGV[2] followed by the key, or once on ARGV[2]
-- followed by ARGV[3] when ARGV[3] is not empty; replies
-- {released, missing, other}: how many keys were deleted, missing, or
-- held another value (left alone). ARGV[4] is the sharded channel of
-- ARGV[3] ("" for none); a key's is sharded(key) (see publish.lua).
-- publish.lua
local function sharded(key)
	local open = string.find(key, "{", 1, true)
	local close = open and string.find(key, "}", open + 1, true)
	if close and close > open + 1 then
		return ARGV[2] .. key
	end
	if not ARGV[5] or string.find(key, "}", 1, true) then
		return ""
	end
	return ARGV[5] .. "{" .. key .. "}"
end
local released, missing, other = 0, 0, 0
for _, key in ipairs(KEYS) do
	local current = redis.call("GET", key)
	if current == false then
		missing = missing + 1
	elseif current == ARGV[1] then
		redis.call("DEL", key)
		if ARGV[3] == "" then
			publish(ARGV[2] .. key, sharded(key), "")
		end
		released = released + 1
	else
		other = other + 1
	end
end
if released > 0 and ARGV[3] ~= "" then
	publish(ARGV[2] .. ARGV[3], ARGV[4] or "", "")
end
return {released, missing, other}
