local counter = false
if ARGV[4] == "1" then
	counter = ""
	local kind = redis.call("TYPE", KEYS[3])["ok"]
	if kind == "string" then
		counter = redis.call("GET", KEYS[3])
	end
	if kind ~= "none" and (kind ~= "string" or #counter > 19 or not string.find(counter, "^%d+$")) then
		return -3
	end
end
local function admitted()
	if counter then
		return {counter, time[1], time[2]}
	end
	return 1
end
