-- record_usage v3: every aggregate of one usage record, including the what-if ones, and on a
-- single Redis the console's whole-deployment figures too (console_lib, prepended at load).
-- v2, which an older proxy may still run in a rolling deploy, has no console figures: the
-- console's totals miss what such a proxy records (the per-customer figures do not).
--
-- KEYS 1-7 carry the customer's hash tag, so without console keys the script runs in one slot
-- (Redis Cluster safe: there record_console_v1 counts the console's figures on its own).
-- Increments stay strings from ARGV to HINCRBY: Lua numbers are doubles and would round
-- totals above 2^53 nano-dollars; HINCRBY parses them as exact 64-bit integers.
-- The version is in the file name: a changed script gets a new name (and so a new SHA), so
-- old and new proxies in a rolling deploy never run each other's script.
--
-- KEYS: 1 request ids of the day (hash: request_id -> stream entry id), 2 usage log stream,
--       3 day base hash, 4 day tag hash, 5 day end-user hash, 6 month totals hash,
--       7 day what-if hash; then, on a single Redis, the console keys (see console_lib).
-- ARGV: 1 request_id, 2 record JSON, 3 log max length, 4 TTL seconds of the data keys,
--       5 TTL seconds of the request ids, 6 "route<US>provider<US>model" (escaped),
--       7 end user (escaped, "" when none), 8 tag count n, 9..8+n tags (escaped, "" when none),
--       9+n alternative count m, then m (alternative (escaped), what-if nano-dollars) pairs,
--       then, with console keys, the 5 console values (see console_lib), then (metric,
--       increment) pairs.
-- Returns 1 when applied, 0 when request_id was already recorded (and then changes nothing).

local SEP = '\31' -- the ASCII unit separator; escaped out of every field part
local request_id = ARGV[1]

if redis.call('HEXISTS', KEYS[1], request_id) == 1 then
  return 0
end
local entry_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'record', ARGV[2])
redis.call('HSET', KEYS[1], request_id, entry_id)
-- The customer's first record of the day: the keys it creates get their TTLs below.
local opens_day = redis.call('HLEN', KEYS[1]) == 1

local base = ARGV[6]
local user_prefix = ARGV[7] .. SEP .. base .. SEP
local first_tag, last_tag = 9, 8 + tonumber(ARGV[8])
local alt_count_at = last_tag + 1
local first_alt, last_alt = alt_count_at + 1, alt_count_at + 2 * tonumber(ARGV[alt_count_at])
local console = #KEYS > 7
local metric_first = last_alt + (console and 6 or 1)
for i = metric_first, #ARGV, 2 do
  local metric, by = ARGV[i], ARGV[i + 1]
  redis.call('HINCRBY', KEYS[3], base .. SEP .. metric, by)
  for t = first_tag, last_tag do
    redis.call('HINCRBY', KEYS[4], ARGV[t] .. SEP .. base .. SEP .. metric, by)
  end
  redis.call('HINCRBY', KEYS[5], user_prefix .. metric, by)
  redis.call('HINCRBY', KEYS[6], metric, by)
  for a = first_alt, last_alt, 2 do
    redis.call('HINCRBY', KEYS[7], ARGV[a] .. SEP .. base .. SEP .. metric, by)
  end
end
for a = first_alt, last_alt, 2 do
  redis.call('HINCRBY', KEYS[7], ARGV[a] .. SEP .. base .. SEP .. 'what_if_nusd', ARGV[a + 1])
end

redis.call('EXPIRE', KEYS[1], ARGV[5])
for k = 2, 7 do
  redis.call('EXPIRE', KEYS[k], ARGV[4])
end
if console then
  count_console(8, ARGV[2], ARGV[4], base, first_alt, last_alt, last_alt + 1, metric_first, opens_day)
end
return 1
