-- publish.lua: publish(classic, sharded, msg) announces msg on a lock's
-- release channels. sharded ("" for none) is SPUBLISHed where the server
-- has SPUBLISH; classic is PUBLISHed where it has not, where SPUBLISH
-- failed, or while a connection of this server subscribes to it.
local function publish(classic, sharded, msg)
	if sharded and sharded ~= "" then
		local sent = redis.pcall("SPUBLISH", sharded, msg)
		if type(sent) ~= "table" or not sent.err then
			if redis.call("PUBSUB", "NUMSUB", classic)[2] == 0 then
				return
			end
		end
	end
	redis.call("PUBLISH", classic, msg)
end
