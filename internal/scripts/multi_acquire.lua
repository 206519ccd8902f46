-- Sets every key to the holder's value, with the expiry, if none exists;
-- otherwise sets none and replies the (1-based) index of the first key
-- that exists.
for i, key in ipairs(KEYS) do
	if redis.call("EXISTS", key) == 1 then
		return i
	end
end
for i, key in ipairs(KEYS) do
	local set = redis.pcall("SET", key, ARGV[1], "PX", ARGV[2])
	if type(set) == "table" and set.err then
		for j = 1, i - 1 do
			redis.call("DEL", KEYS[j])
		end
		return redis.error_reply(set.err)
	end
end
return 0
