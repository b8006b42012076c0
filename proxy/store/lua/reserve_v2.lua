-- reserve v2: hold a request's worst-case cost on every budget counter that applies, or
-- on none. Admitted when, for every hard budget: spent + held + amount <= limit
-- (proxy.budgets.first_violation is the same rule in Python).
--
-- KEYS: 1 holds zset (request id -> expiry ms), 2 hold hash (request id -> hold),
--       3 reclaimed zset, 4.. counter hashes.
-- ARGV: 1 request id, 2 amount, 3 ttl ms, 4 now ms ("" = Redis TIME), 5 max expired holds
--       reclaimed per call, then per counter: period, limit, hard ("1"/"0").
-- Returns {violated (0 = held), now ms, reclaimed, then per counter: pid, spent, held}.
-- A replay for a request already held holds nothing more and answers "held".

local rid, amount = ARGV[1], bounded(ARGV[2])
local now = clock(ARGV[4])
local reclaimed = reclaim(now, tonumber(ARGV[5]))
local replay = redis.call('HEXISTS', HOLD, rid) == 1
local n = #KEYS - 3
local out, violated = {}, 0
for i = 1, n do
  local a = 6 + (i - 1) * 3
  local period, limit, hard = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2] == '1'
  local pid = period_id(period, now)
  local spent, held = current(KEYS[3 + i], period, pid)
  if not replay and violated == 0 and hard and spent + held + amount > limit then
    violated = i
  end
  out[#out + 1] = pid
  out[#out + 1] = spent
  out[#out + 1] = held
end
if violated == 0 and not replay then
  local keys = {}
  for i = 1, n do
    out[3 * i] = add_capped(KEYS[3 + i], 'held', amount, MAX_COUNTER)
    keys[i] = KEYS[3 + i]
  end
  redis.call('ZADD', HOLDS, now + tonumber(ARGV[3]), rid)
  redis.call('HSET', HOLD, rid, int(amount) .. '\n' .. table.concat(keys, '\n'))
end
return {violated, now, reclaimed, unpack(out)}
