
local counter = ""
local kind = redis.call("TYPE", KEYS[2])["ok"]
if kind == "string" then
	counter = redis.call("GET", KEYS[2])
end
if kind ~= "none" and (kind ~= "string" or #counter > 19 or not string.find(counter, "^%d+$")) then
	return -3
end
