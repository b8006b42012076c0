-- console_lib v1: the console's whole-deployment figures of one usage record. Prepended at
-- load to record_usage_v3 (a single Redis: one script writes a record's customer figures and
-- these) and to record_console_v1 (a Redis Cluster: these keys live in the {g} slot, so they
-- get a script call of their own).
--
-- Increments stay strings from ARGV (HINCRBY parses exact 64-bit integers). The sorted-set
-- scores only order customers; every amount shown is read from the integer hashes.
-- TTLs are set when `set_ttl` (the record opens a day for its customer or claim hash), not
-- on every record: fewer calls, and a bucket key never outlives its day by more than the TTL.
--
-- KEYS from k: day hash, day what-if hash, minute hash, recent records (stream), day totals
--   per customer (hash), then per block level: cost, requests and tokens sorted sets.
-- ARGV from c: recent stream max length, TTL seconds of the minute hash, customer (escaped),
--   cost nano-dollars, tokens (input + output). Alternatives and metrics: ARGV ranges.

local SEP = '\31'
local MINUTE_METRIC = {cost_nusd = true, requests = true, unpriced_requests = true}

local function count_console(k, json, data_ttl, base, alt_first, alt_last, c, metric_first, set_ttl)
  local day, what_if, minute, recent, per_customer = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local customer = ARGV[c + 2]
  redis.call('XADD', recent, 'MAXLEN', '~', ARGV[c], '*', 'record', json)
  for i = metric_first, #ARGV, 2 do
    local metric, by = ARGV[i], ARGV[i + 1]
    redis.call('HINCRBY', day, base .. SEP .. metric, by)
    redis.call('HINCRBY', per_customer, customer .. SEP .. metric, by)
    if MINUTE_METRIC[metric] then
      local now = redis.call('HINCRBY', minute, metric, by)
      if metric == 'requests' and now == 1 then
        redis.call('EXPIRE', minute, ARGV[c + 1])
      end
    end
    for a = alt_first, alt_last, 2 do
      redis.call('HINCRBY', what_if, ARGV[a] .. SEP .. base .. SEP .. metric, by)
    end
  end
  if alt_last >= alt_first then
    for a = alt_first, alt_last, 2 do
      redis.call('HINCRBY', what_if, ARGV[a] .. SEP .. base .. SEP .. 'what_if_nusd', ARGV[a + 1])
    end
    redis.call('EXPIRE', what_if, data_ttl)
  end
  for z = k + 5, #KEYS, 3 do
    redis.call('ZINCRBY', KEYS[z], ARGV[c + 3], customer)
    redis.call('ZINCRBY', KEYS[z + 1], 1, customer)
    redis.call('ZINCRBY', KEYS[z + 2], ARGV[c + 4], customer)
  end
  if set_ttl then
    for z = k, #KEYS do
      if z ~= k + 1 and z ~= k + 2 then
        redis.call('EXPIRE', KEYS[z], data_ttl)
      end
    end
  end
end

