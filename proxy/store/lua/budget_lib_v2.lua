-- budget_lib v2: helpers shared by reserve_v2 and settle_v2 (prepended to each at load).
-- v2: amounts are held at MAX_AMOUNT and counters saturate at MAX_COUNTER (v1 let an
-- absurd reservation overflow HINCRBY, and formatted large releases as "1e+15").
--
-- Every budget key carries the hash tag {b}: one slot, so a script may touch the counters
-- of any request (reclaiming expired holds) in Redis Cluster as well.
-- Time comes from Redis TIME (ARGV override for tests only). Money is integer nano-dollars:
-- Lua numbers are doubles, exact below 2^53 (limits are capped at $9,000,000 for this, and
-- one amount at MAX_AMOUNT, as proxy.budgets.rules); the stored sums themselves are only
-- changed by HINCRBY, exactly, and held at MAX_COUNTER so they never near 2^63. A number
-- goes back to Redis as an integer string (int): Lua's own tostring writes "1e+15".
-- Counter hash fields: pid (period id), spent, held, rb0..rb11 / ra0..ra11 (a ring of
-- 5-minute buckets of settled spend: the last hour's burn rate).

local HOLDS, HOLD, RECLAIMED = KEYS[1], KEYS[2], KEYS[3]
local COUNTER_TTL = {daily = 3 * 86400, weekly = 15 * 86400, monthly = 70 * 86400}
local BUCKET_MS, BUCKETS = 300000, 12
local FORGET_RECLAIMED_MS = 86400000
local MAX_AMOUNT = 9007199254740991        -- 2^53 - 1: proxy.budgets.rules.MAX_AMOUNT_NUSD
local MAX_COUNTER = '4611686018427387904'  -- 2^62: proxy.budgets.rules.MAX_COUNTER_NUSD
local MAX_BURN_BUCKET = '288230376151711744'  -- 2^58: twelve of them stay below 2^62

local function int(x)
  return string.format('%.0f', x)
end

-- An amount from ARGV as the scripts use it: an integer 0..MAX_AMOUNT.
local function bounded(text)
  local x = tonumber(text) or 0
  if x ~= x or x < 0 then return 0 end
  if x > MAX_AMOUNT then return MAX_AMOUNT end
  return math.floor(x)
end

-- HINCRBY by a bounded amount, then saturate at `cap` (an integer string); the result.
local function add_capped(key, field, amount, cap)
  local value = redis.call('HINCRBY', key, field, int(amount))
  if value > tonumber(cap) then
    redis.call('HSET', key, field, cap)
    return tonumber(cap)
  end
  return value
end

local function clock(override)
  if override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Days since 1970-01-01 -> year, month, day (H. Hinnant's civil_from_days).
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

-- The same ids as proxy.budgets.period_id.
local function period_id(period, ms)
  local day = math.floor(ms / 86400000)
  if period == 'daily' then
    return string.format('%04d-%02d-%02d', civil(day))
  elseif period == 'weekly' then
    return string.format('%04d-%02d-%02d', civil(day - (day + 3) % 7))
  elseif period == 'monthly' then
    local y, m = civil(day)
    return string.format('%04d-%02d', y, m)
  end
  return 'total'
end

-- Brings a counter into period `pid`: a new period starts with nothing spent; open holds
-- carry over (they settle into the period they end in). Returns spent, held.
local function current(key, period, pid)
  local v = redis.call('HMGET', key, 'pid', 'spent', 'held')
  if v[1] == pid then return tonumber(v[2]) or 0, tonumber(v[3]) or 0 end
  local held = math.max(0, tonumber(v[3]) or 0)
  redis.call('DEL', key)
  redis.call('HSET', key, 'pid', pid, 'spent', 0, 'held', int(held))
  if COUNTER_TTL[period] then redis.call('EXPIRE', key, COUNTER_TTL[period]) end
  return 0, held
end

local function release(key, amount)
  local held = tonumber(redis.call('HGET', key, 'held'))
  if held and held > 0 then redis.call('HINCRBY', key, 'held', int(-math.min(held, amount))) end
end

-- A hold is "amount\nkey\nkey...". A reclaimed one is kept a day, prefixed "x", so a late
-- settle still adds its cost but releases nothing twice.
local function hold_keys(info)
  local amount, keys = nil, {}
  for part in string.gmatch(info, '[^\n]+') do
    if amount == nil then amount = tonumber(part) else keys[#keys + 1] = part end
  end
  return amount, keys
end

local function reclaim(now, max_count)
  local expired = redis.call('ZRANGEBYSCORE', HOLDS, '-inf', now, 'LIMIT', 0, max_count)
  for _, rid in ipairs(expired) do
    local info = redis.call('HGET', HOLD, rid)
    if info and string.sub(info, 1, 1) ~= 'x' then
      local amount, keys = hold_keys(info)
      for _, key in ipairs(keys) do release(key, amount) end
      redis.call('HSET', HOLD, rid, 'x' .. info)
      redis.call('ZADD', RECLAIMED, now, rid)
    end
    redis.call('ZREM', HOLDS, rid)
  end
  local old = redis.call('ZRANGEBYSCORE', RECLAIMED, '-inf', now - FORGET_RECLAIMED_MS,
    'LIMIT', 0, max_count)
  for _, rid in ipairs(old) do
    redis.call('HDEL', HOLD, rid)
    redis.call('ZREM', RECLAIMED, rid)
  end
  return #expired
end
