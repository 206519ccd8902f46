-- Deletes every key that holds the holder's value and announces the
-- release on the channel ARGV[2] followed by the key, or once on ARGV[2]
-- followed by ARGV[3] when ARGV[3] is not empty; replies
-- {released, missing, other}: how many keys were deleted, missing, or
-- held another value (left alone).
local released, missing, other = 0, 0, 0
for _, key in ipairs(KEYS) do
	local current = redis.call("GET", key)
	if current == false then
		missing = missing + 1
	elseif current == ARGV[1] then
		redis.call("DEL", key)
		if ARGV[3] == "" then
			redis.call("PUBLISH", ARGV[2] .. key, "")
		end
		released = released + 1
	else
		other = other + 1
	end
end
if released > 0 and ARGV[3] ~= "" then
	redis.call("PUBLISH", ARGV[2] .. ARGV[3], "")
end
return {released, missing, other}
