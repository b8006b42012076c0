-- settle v2: release a request's hold and add its actual cost to every counter, once.
--
-- KEYS: as reserve v2 (1 holds, 2 hold, 3 reclaimed, 4.. counter hashes).
-- ARGV: 1 request id, 2 cost, 3 now ms ("" = Redis TIME), then per counter: period.
-- Returns {1, now ms, then per counter: pid, spent, held, burn of the last hour}, or
-- {0, now ms} when the request holds nothing (settled before): a replay changes nothing.

local rid, cost = ARGV[1], bounded(ARGV[2])
local now = clock(ARGV[3])
local info = redis.call('HGET', HOLD, rid)
if not info then return {0, now} end
local amount = 0
if string.sub(info, 1, 1) == 'x' then
  redis.call('ZREM', RECLAIMED, rid) -- its hold was released when it expired
else
  amount = hold_keys(info)
  redis.call('ZREM', HOLDS, rid)
end
redis.call('HDEL', HOLD, rid)

local bucket = math.floor(now / BUCKET_MS)
local slot = bucket % BUCKETS
local ring = {}
for j = 0, BUCKETS - 1 do
  ring[#ring + 1] = 'rb' .. j
  ring[#ring + 1] = 'ra' .. j
end
local out = {1, now}
for i = 1, #KEYS - 3 do
  local key, period = KEYS[3 + i], ARGV[3 + i]
  local pid = period_id(period, now)
  current(key, period, pid)
  if amount > 0 then release(key, amount) end
  local spent = add_capped(key, 'spent', cost, MAX_COUNTER)
  if cost > 0 then
    if tonumber(redis.call('HGET', key, 'rb' .. slot)) == bucket then
      add_capped(key, 'ra' .. slot, cost, MAX_BURN_BUCKET)
    else
      redis.call('HSET', key, 'rb' .. slot, int(bucket), 'ra' .. slot,
        int(math.min(cost, tonumber(MAX_BURN_BUCKET))))
    end
  end
  local values = redis.call('HMGET', key, 'held', unpack(ring))
  local burn = 0
  for j = 0, BUCKETS - 1 do
    local b = tonumber(values[2 + 2 * j])
    if b and b > bucket - BUCKETS then burn = burn + (tonumber(values[3 + 2 * j]) or 0) end
  end
  out[#out + 1] = pid
  out[#out + 1] = spent
  out[#out + 1] = tonumber(values[1]) or 0
  out[#out + 1] = burn
end
return out
