local function highestCounter(first)
	local highest = ""
	for i = first, #KEYS do
		local kind = redis.call("TYPE", KEYS[i])["ok"]
		if kind ~= "none" then
			local c = kind == "string" and redis.call("GET", KEYS[i]) or ""
			if #c == 0 or #c > 19 or not string.find(c, "^%d+$") then
				return nil
			end
			c = string.gsub(c, "^0+(%d)", "%1")
			if #c > #highest or (#c == #highest and c > highest) then
				highest = c
			end
		end
	end
	return highest
end
