-- Move a session to a new id (session-fixation protection), atomically,
-- in one round trip.
--
-- KEYS[1]  old record            kv:{s:PREFIX}:OLDHASH
-- KEYS[2]  new record            kv:{s:PREFIX}:NEWHASH
-- KEYS[3]  expiry index          kv:{s:PREFIX}:idx
-- ARGV[1]  the new id, sealed (goes into the record's "sid")
-- ARGV[2]  grace period in milliseconds
-- ARGV[3]  old member (OLDHASH), ARGV[4] new member (NEWHASH)
-- KEYS[4]  the index of the user the caller expects the record to have
--          (kv:{s:PREFIX}:u:USER; for no user, any key of the store)
-- ARGV[5]  that user id ("" for none)
--
-- The record is copied byte for byte except its "sid", which Go always
-- writes first after "v". The old id keeps a read-only stub (the record
-- plus "renewed":true) for the grace period, capped by the remaining
-- lifetime. The record's user index is only known once the record is
-- read: when it is not the one the caller declared, nothing is written and
-- the script returns the record's user, for the caller to call again with
-- that index declared. Returns {1} on success, {0} if the old record is
-- gone, {-1} if the new id is taken, {-2} if the old record does not
-- parse, {-3} if it is itself a stub, {-4, user id} for another user.

local cur = redis.call('GET', KEYS[1])
if not cur then return {0} end
-- Only records this package wrote: one JSON object, nothing after it.
if string.sub(cur, -1) ~= '}' or string.sub(cur, 1, 13) ~= '{"v":1,"sid":' then return {-2} end
local ok, rec = pcall(cjson.decode, cur)
if not ok or type(rec) ~= 'table' or type(rec.sid) ~= 'string' then return {-2} end
if rec.renewed then return {-3} end
local user = rec.user_id
if user == nil or user == cjson.null then
  user = ''
end
if type(user) ~= 'string' then return {-2} end
if user ~= ARGV[5] then return {-4, user} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return {0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local moved, n = string.gsub(cur, '^{"v":1,"sid":"[^"]*"', '{"v":1,"sid":"' .. ARGV[1] .. '"', 1)
if n ~= 1 then return {-2} end

local t = redis.call('TIME')
local score = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl

redis.call('SET', KEYS[2], moved, 'PX', ttl)
redis.call('SET', KEYS[1], string.sub(cur, 1, -2) .. ',"renewed":true}', 'PX', math.min(tonumber(ARGV[2]), ttl))
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[3], score, ARGV[4])
if user ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('ZADD', KEYS[4], score, ARGV[4])
end
return {1}
