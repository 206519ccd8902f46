-- Resets the expiry of every key if all hold the holder's value; otherwise
-- extends none and replies the (1-based) index of the first key that does
-- not (-index when it is missing).
for i, key in ipairs(KEYS) do
	local current = redis.call("GET", key)
	if current == false then
		return -i
	end
	if current ~= ARGV[1] then
		return i
	end
end
for _, key in ipairs(KEYS) do
	redis.call("PEXPIRE", key, ARGV[2])
end
return 0
