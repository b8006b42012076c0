-- record_console v1: the console's whole-deployment figures of one usage record.
--
-- Every KEY carries the hash tag {g}, so the script runs in one slot (Redis Cluster safe); it
-- is sent beside record_usage (which keeps the per-customer figures in the customer's slot)
-- and is idempotent on its own: the request id is claimed in a per-day hash first, so a
-- replay of the record (a retried batch, the journal) changes nothing here either.
-- Increments stay strings from ARGV (HINCRBY parses exact 64-bit integers). The sorted-set
-- scores only order customers; every amount shown is read from the integer hashes.
-- Keys get their TTL when the day's first record creates them (bucket keys never outlive
-- their day's claim hash by more than the data TTL), not on every record: fewer calls.
--
-- KEYS: 1 claimed request ids of the day (hash), 2 day hash, 3 day what-if hash,
--       4 minute hash, 5 recent records (stream), 6 day totals per customer (hash),
--       then per block level: cost, requests and tokens sorted sets.
-- ARGV: 1 request_id, 2 record JSON, 3 recent stream max length, 4 TTL seconds of the data
--       keys, 5 TTL seconds of the claimed ids, 6 TTL seconds of the minute hash,
--       7 "route<US>provider<US>model" (escaped), 8 customer (escaped), 9 cost nano-dollars,
--       10 tokens (input + output), 11 alternative count m, then m (alternative (escaped),
--       what-if nano-dollars) pairs, then (metric, increment) pairs.
-- Returns 1 when applied, 0 when request_id was already counted here.

local SEP = '\31'
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then
  return 0
end
local first_of_day = redis.call('HLEN', KEYS[1]) == 1
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'record', ARGV[2])

local base, customer = ARGV[7], ARGV[8]
local first_alt, last_alt = 12, 11 + 2 * tonumber(ARGV[11])
local minute_metric = {cost_nusd = true, requests = true, unpriced_requests = true}
for i = last_alt + 1, #ARGV, 2 do
  local metric, by = ARGV[i], ARGV[i + 1]
  redis.call('HINCRBY', KEYS[2], base .. SEP .. metric, by)
  redis.call('HINCRBY', KEYS[6], customer .. SEP .. metric, by)
  if minute_metric[metric] then
    local now = redis.call('HINCRBY', KEYS[4], metric, by)
    if metric == 'requests' and now == 1 then
      redis.call('EXPIRE', KEYS[4], ARGV[6])
    end
  end
  for a = first_alt, last_alt, 2 do
    redis.call('HINCRBY', KEYS[3], ARGV[a] .. SEP .. base .. SEP .. metric, by)
  end
end
if last_alt >= first_alt then
  for a = first_alt, last_alt, 2 do
    redis.call('HINCRBY', KEYS[3], ARGV[a] .. SEP .. base .. SEP .. 'what_if_nusd', ARGV[a + 1])
  end
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
for k = 7, #KEYS, 3 do
  redis.call('ZINCRBY', KEYS[k], ARGV[9], customer)
  redis.call('ZINCRBY', KEYS[k + 1], 1, customer)
  redis.call('ZINCRBY', KEYS[k + 2], ARGV[10], customer)
end

if first_of_day then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  for k = 2, #KEYS do
    if k ~= 3 and k ~= 4 then
      redis.call('EXPIRE', KEYS[k], ARGV[4])
    end
  end
end
return 1
