
if ARGV[1] == "time" then
	return redis.call("TIME")
end
return redis.call("INFO")
