package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below are every write the store makes (with those of
// impressions.go). Redis runs a script
// alone (no other command interleaves) and propagates its effects to the AOF
// and to replicas wrapped in MULTI/EXEC, so a script's writes reach the disk
// all together or, for a truncated AOF tail, not at all. Redis does not roll
// a script back on a runtime error, so each script reads and checks
// everything before its first write.
//
// Common KEYS, in this order, for every script: 1 ids, 2 users, 3 changes,
// 4 seq, 5 floor, 6 deletions; per-user keys follow. Common ARGV: 1 origin
// (the writing Store's replica ID), 2 the change stream's MAXLEN.

// luaPrelude holds the helpers the scripts share: the change-stream entry
// with the next sequence number, trimming (which raises the floor below
// which a follower may have missed entries) and the purge of user-deletion
// entries past their retention.
const luaPrelude = `
redis.replicate_commands()
local K_IDS, K_USERS, K_CHANGES, K_SEQ, K_FLOOR, K_DELETIONS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ORIGIN, MAXLEN = ARGV[1], tonumber(ARGV[2])

local function seqid(n) return string.format('%d-0', n) end

local function seqbytes(n)
  local b = {}
  for i = 6, 1, -1 do b[i] = n % 256; n = math.floor(n / 256) end
  return string.char(b[1], b[2], b[3], b[4], b[5], b[6])
end

local function uvarint(s, p)
  local x, mul = 0, 1
  while true do
    local c = string.byte(s, p)
    p = p + 1
    if c < 128 then return x + c * mul, p end
    x = x + (c - 128) * mul
    mul = mul * 128
  end
end

-- elem returns the sequence number and event ID of a user's list element:
-- 6 bytes of sequence number, the event record's tag byte, then the ID.
local function elem(v)
  local n = 0
  for i = 1, 6 do n = n * 256 + string.byte(v, i) end
  local idlen, p = uvarint(v, 8)
  return n, string.sub(v, p, p + idlen - 1)
end

local function raisefloor(n)
  local cur = tonumber(redis.call('GET', K_FLOOR) or '0')
  if n > cur then redis.call('SET', K_FLOOR, n) end
end

local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- finish trims the change stream and purges due user deletions: the
-- deletion entry and the entries that carried the user's events. Both
-- remove entries a follower may not have read: the floor records the
-- highest sequence number removed, and a follower finding a gap at or
-- below it resyncs.
local function finish()
  if redis.call('XTRIM', K_CHANGES, 'MAXLEN', '~', MAXLEN) > 0 then
    local first = redis.call('XRANGE', K_CHANGES, '-', '+', 'COUNT', 1)
    if first[1] then raisefloor(tonumber(string.match(first[1][1], '^(%d+)')) - 1) end
  end
  local now = nowms()
  while true do
    local head = redis.call('LINDEX', K_DELETIONS, 0)
    if not head then break end
    local n, due, carried = string.match(head, '^(%d+):(%d+):([%d,]*)$')
    if tonumber(due) > now then break end
    redis.call('LPOP', K_DELETIONS)
    for c in string.gmatch(carried, '%d+') do redis.call('XDEL', K_CHANGES, seqid(c)) end
    redis.call('XDEL', K_CHANGES, seqid(n))
    raisefloor(tonumber(n))
  end
end
`

// appendScript stores the events that are new, all or none. The caller has
// removed repeats within the batch and grouped the events by user. KEYS[7..]
// are the users' lists. ARGV[3] is the number of users; then for each user
// its ID, its number of events n, the n event IDs and the n records. It
// checks every ID with HMGET before its first write, then writes each user's
// new events with one RPUSH and one change entry, and all idempotency keys
// and user-set members with one HSET and one SADD (calls from Lua cost more
// than the commands). It returns one byte per event, in the order of ARGV,
// '1' for stored.
var appendScript = redis.NewScript(luaPrelude + `
local function chunked(cmd, key, list)
  for c = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, c, math.min(c + 999, #list)))
  end
end
local users, ids = {}, {}
local p = 4
for j = 1, tonumber(ARGV[3]) do
  local n = tonumber(ARGV[p + 1])
  users[j] = {uid = ARGV[p], n = n, ids = p + 2, recs = p + 2 + n}
  for i = p + 2, p + 1 + n do
    if ARGV[i] ~= '' then ids[#ids + 1] = ARGV[i] end
  end
  p = p + 2 + 2 * n
end
local held = {}
for c = 1, #ids, 1000 do
  local last = math.min(c + 999, #ids)
  local got = redis.call('HMGET', K_IDS, unpack(ids, c, last))
  for i = c, last do
    if got[i - c + 1] then held[ids[i]] = true end
  end
end
local seq = tonumber(redis.call('GET', K_SEQ) or '0')
local seq0 = seq
local out, hset, sadd = {}, {}, {}
for j, u in ipairs(users) do
  local elems, parts = {}, {}
  for i = 0, u.n - 1 do
    local id = ARGV[u.ids + i]
    if id == '' or not held[id] then
      parts[#parts + 1] = ARGV[u.recs + i]
      if id ~= '' then hset[#hset + 1] = id; hset[#hset + 1] = u.uid end
      out[#out + 1] = '1'
    else
      out[#out + 1] = '0'
    end
  end
  if #parts > 0 then
    seq = seq + 1
    local hdr = seqbytes(seq)
    for k, rec in ipairs(parts) do elems[k] = hdr .. rec end
    chunked('RPUSH', KEYS[6 + j], elems)
    redis.call('XADD', K_CHANGES, seqid(seq), 'o', ORIGIN, 'k', 'e', 'u', u.uid, 'v', table.concat(parts))
    sadd[#sadd + 1] = u.uid
  end
end
if seq > seq0 then
  redis.call('SET', K_SEQ, seq)
  chunked('HSET', K_IDS, hset)
  chunked('SADD', K_USERS, sadd)
  finish()
end
return table.concat(out)
`)

// upsertScript stores items. KEYS[7] is the items hash. ARGV[3] is the
// change payload (the item records); then item ID and record pairs.
var upsertScript = redis.NewScript(luaPrelude + `
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1]) end
local seq = redis.call('INCR', K_SEQ)
redis.call('XADD', K_CHANGES, seqid(seq), 'o', ORIGIN, 'k', 'i', 'v', ARGV[3])
finish()
return 0
`)

// deleteItemsScript removes items and returns how many existed. KEYS[7] is
// the items hash. ARGV[3] is the change payload (the IDs); then the IDs.
var deleteItemsScript = redis.NewScript(luaPrelude + `
local n = 0
for i = 4, #ARGV do n = n + redis.call('HDEL', KEYS[7], ARGV[i]) end
if n > 0 then
  local seq = redis.call('INCR', K_SEQ)
  redis.call('XADD', K_CHANGES, seqid(seq), 'o', ORIGIN, 'k', 'd', 'v', ARGV[3])
  finish()
end
return n
`)

// deleteUserScript removes a user's events, their idempotency keys, the
// user's membership of the user set, and the user's impressions, outcomes
// and impusers member, and announces the deletion. The change entries that
// carried the user's events stay, so that followers see the user's writes
// and then the deletion in order, until the deletion's retention passes:
// then finish removes them with the deletion entry, and nothing of the
// user remains. KEYS[7] is the user's list, KEYS[8] and KEYS[9] its
// impression and outcome sets, KEYS[10] impusers. ARGV[3] is the user ID,
// ARGV[4] the retention in milliseconds. It returns the number of events
// removed. (A user with impressions but no events is not announced:
// followers hold no impressions.)
var deleteUserScript = redis.NewScript(luaPrelude + `
local els = redis.call('LRANGE', KEYS[7], 0, -1)
local carried, last = {}, -1
for _, v in ipairs(els) do
  local seq, id = elem(v)
  if seq ~= last then carried[#carried + 1] = string.format('%d', seq); last = seq end
  if id ~= '' then redis.call('HDEL', K_IDS, id) end
end
redis.call('DEL', KEYS[7], KEYS[8], KEYS[9])
redis.call('ZREM', KEYS[10], ARGV[3])
local was = redis.call('SREM', K_USERS, ARGV[3])
if #els > 0 or was == 1 then
  local seq = redis.call('INCR', K_SEQ)
  redis.call('XADD', K_CHANGES, seqid(seq), 'o', ORIGIN, 'k', 'u', 'u', ARGV[3])
  redis.call('RPUSH', K_DELETIONS, string.format('%d:%d:', seq, nowms() + tonumber(ARGV[4])) .. table.concat(carried, ','))
  finish()
end
return #els
`)

// purgeScript only runs finish: followers call it while idle so that
// user-deletion entries go when due even when nobody writes.
var purgeScript = redis.NewScript(luaPrelude + `
finish()
return 0
`)

// positionScript returns the last sequence number and the floor together.
var positionScript = redis.NewScript(luaPrelude + `
return {tonumber(redis.call('GET', K_SEQ) or '0'), tonumber(redis.call('GET', K_FLOOR) or '0')}
`)
