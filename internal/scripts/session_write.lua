-- Write a session record with an optimistic check, and keep its indexes.
--
-- KEYS[1]  record                kv:{s:PREFIX}:HASH (HASH under the current key)
-- KEYS[2]  expiry index (zset)   kv:{s:PREFIX}:idx
-- KEYS[3]  the record's user index (zset), or kv:{s:PREFIX}:u: when none
-- KEYS[4]  the index of the user the current value has (else = KEYS[3])
-- KEYS[5]  where the current value is: KEYS[1], or the record's key under a
--          previous store key when the write moves it to the current one
-- ARGV[1]  expected current value (at KEYS[5]): "" = must not exist,
--          "*" = anything (a blind write, see ARGV[9]), else the SHA1 of the
--          current value
-- ARGV[2]  the record (JSON)
-- ARGV[3]  time to live in milliseconds
-- ARGV[4]  the index member (HASH)
-- ARGV[5]  "1" if KEYS[3] is a real user index
-- ARGV[6]  the user id the current value has ("" for none), as a JSON
--          string's contents (escaped as the record holds it): KEYS[4] is its
--          index
-- ARGV[7]  "" or, when moving, the member of KEYS[5] (its HASH under the previous key)
-- ARGV[8]  m: copies of the record under previous keys to delete (a blind write
--          does not know where the record was): KEYS[6..5+m], members ARGV[10..9+m]
-- ARGV[9]  a blind write's expected "created" of the current value, or ""
--          for any. A blind write reads the current value (at KEYS[1], else
--          the first copy of KEYS[6..5+m]): when its user is not ARGV[6] or
--          its "created" not ARGV[9], nothing is written and it returns {-4,
--          its user (decoded), its created}, for the caller to call again with that
--          user's index declared (and an expiry computed from that creation
--          time); otherwise the record is written with the current value's
--          "created" (a session keeps its creation time across blind writes)
-- ARGV[10+m] the most sessions the user may have (0: no limit); when the write
--          adds one beyond it, the user's sessions that expire soonest go: their
--          records must be among KEYS[6+m..] (members ARGV[11+m..]), declared
--          by the caller from the user index
--
-- Index scores are expiry times on this server's clock (ms). Returns {1,
-- evicted sessions, the "created" kept, or "" for a new session} if
-- written, {0} if
-- the current value did not match (a concurrent write), {-2} if a blind
-- write would replace something that is not a session record (it is left
-- for a person to look at), {-3, members...} when the limit needs to
-- evict sessions the caller did not declare: nothing is written, and the
-- caller calls again declaring these members of the user index; {-4, user,
-- created} as above; {-5} if a blind write would replace the read-only
-- stub Renew left.

local src = KEYS[5]
local cur = redis.call('GET', src)
local want = ARGV[1]
local body = ARGV[2]
local kept = ''
if want == '' then
  if cur then return {0} end
elseif want == '*' then
  local m = tonumber(ARGV[8])
  local found = cur
  for i = 1, m do
    if found then break end
    found = redis.call('GET', KEYS[5 + i])
  end
  if found then
    -- Records are written by this package's Go code, fields in a fixed
    -- order: {"v":1,"sid":"...",["user_id":"...",]"created":"...",...
    -- ["renewed":true]}. The expected user and creation time are checked
    -- on the bytes; only a mismatch decodes the record (to name its user).
    if string.sub(found, -1) ~= '}' or string.sub(found, 1, 14) ~= '{"v":1,"sid":"' then return {-2} end
    if string.sub(found, -16) == ',"renewed":true}' then return {-5} end
    local sid_end = string.find(found, '"', 15, true)
    if not sid_end then return {-2} end
    local after = ',"created":"'
    if ARGV[6] ~= '' then
      after = ',"user_id":"' .. ARGV[6] .. '","created":"'
    end
    local created = nil
    if string.sub(found, sid_end + 1, sid_end + #after) == after then
      created = string.match(found, '^([0-9TZ:.+-]+)"', sid_end + #after + 1)
    end
    if not created or (ARGV[9] ~= '' and created ~= ARGV[9]) then
      local ok, rec = pcall(cjson.decode, found)
      if not ok or type(rec) ~= 'table' then return {-2} end
      local user = rec.user_id
      if user == nil or user == cjson.null then user = '' end
      if type(user) ~= 'string' or type(rec.created) ~= 'string' then return {-2} end
      if not string.match(rec.created, '^[0-9TZ:.+-]+$') then return {-2} end
      return {-4, user, rec.created}
    end
    local n
    body, n = string.gsub(body, '"created":"[^"]*"', '"created":"' .. created .. '"', 1)
    if n ~= 1 then return redis.error_reply('ERR session record without "created"') end
    kept = created
  end
else
  if not cur or redis.sha1hex(cur) ~= want then return {0} end
end
local moving = ARGV[7] ~= ''
if moving and redis.call('EXISTS', KEYS[1]) == 1 then
  return {0} -- already moved by someone else: read again
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local score = now + ttl
local member = ARGV[4]
local m = tonumber(ARGV[8])
local limit = tonumber(ARGV[10 + m])

-- The per-user limit: decided before anything is written.
local declared = {} -- member -> its record's key, as the caller declared them
for i = 11 + m, #ARGV do
  declared[ARGV[i]] = KEYS[i - 5]
end
local victims = {}
if limit > 0 and ARGV[5] == '1' and not redis.call('ZSCORE', KEYS[3], member)
    and not (moving and redis.call('ZSCORE', KEYS[3], ARGV[7])) then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) -- expired: their records are gone
  local members = redis.call('ZRANGE', KEYS[3], 0, -1)
  local excess = #members + 1 - limit
  if excess > 0 then
    for i = 1, excess do
      if not declared[members[i]] then
        local out = {-3}
        for _, x in ipairs(members) do
          out[#out + 1] = x
        end
        return out
      end
      victims[#victims + 1] = members[i]
    end
  end
end

redis.call('SET', KEYS[1], body, 'PX', ttl)
redis.call('ZADD', KEYS[2], score, member)
expire_at_max(KEYS[2])
if ARGV[6] ~= '' and KEYS[4] ~= KEYS[3] then
  redis.call('ZREM', KEYS[4], member)
end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], score, member)
  expire_at_max(KEYS[3])
end
-- The record's copies under previous keys go with their index entries.
local gone = {}
if moving then
  gone[#gone + 1] = {src, ARGV[7]}
end
for i = 1, m do
  gone[#gone + 1] = {KEYS[5 + i], ARGV[9 + i]}
end
for _, g in ipairs(gone) do
  if g[1] ~= KEYS[1] then
    redis.call('DEL', g[1])
    redis.call('ZREM', KEYS[2], g[2])
    redis.call('ZREM', KEYS[3], g[2])
    redis.call('ZREM', KEYS[4], g[2])
  end
end
-- Evict the sessions over the limit (declared above).
for _, v in ipairs(victims) do
  redis.call('DEL', declared[v])
  redis.call('ZREM', KEYS[2], v)
  redis.call('ZREM', KEYS[3], v)
end
return {1, #victims, kept}
