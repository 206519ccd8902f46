
local current = redis.call("GET", KEYS[1])
local ttl = redis.call("PTTL", KEYS[1])
local record = redis.call("HMGET", KEYS[2], "lock", "term", "seq", "value")
return {current, ttl, record[1], record[2], record[3], record[4]}
