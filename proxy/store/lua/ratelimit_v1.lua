-- ratelimit v1: take from (or adjust) leaky buckets, all or nothing. See proxy/ratelimit.py.
--
-- A bucket is a hash {u = used units, t = ms of u}; it drains `limit` units per ms and one
-- request (or token) costs 60000 units, so a full bucket empties in one minute. Time comes
-- from Redis TIME, so every proxy instance agrees on it. Levels stay below 2^53 (limits are
-- capped at 10^9 per minute), where Lua doubles are exact integers.
-- The version is in the file name: a changed script gets a new name and SHA.
--
-- KEYS: the bucket hashes (one hash tag: one Cluster slot).
-- ARGV: 1 mode "take" (check every bucket, then take from all or none) or "adjust" (add
--       the costs, which may be negative, without a check); then per key: limit, cost.
-- Returns {1 if taken else 0, level of each bucket after the call}.

local W = 60000
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local levels = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local stored = redis.call('HMGET', KEYS[i], 'u', 't')
  local used = tonumber(stored[1]) or 0
  local elapsed = now - (tonumber(stored[2]) or now)
  if elapsed > 0 then
    used = used - elapsed * limit
  end
  if used < 0 then
    used = 0
  end
  levels[i] = used
end

local taken = 1
if ARGV[1] == 'take' then
  for i = 1, #KEYS do
    if levels[i] + tonumber(ARGV[2 * i + 1]) * W > tonumber(ARGV[2 * i]) * W then
      taken = 0
    end
  end
end

local out = {taken}
for i = 1, #KEYS do
  local used = levels[i]
  if taken == 1 then
    local limit = tonumber(ARGV[2 * i])
    used = used + tonumber(ARGV[2 * i + 1]) * W
    if used < 0 then
      used = 0
    end
    redis.call('HSET', KEYS[i], 'u', string.format('%.0f', used), 't', string.format('%.0f', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(used / limit) + 1000)
  end
  out[i + 1] = used
end
return out
