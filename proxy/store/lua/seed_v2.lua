-- seed v2: raise budget counters to at least the spend the usage aggregates hold for the
-- current period (a budget created mid-period; see proxy/budgets/seed.py). It takes the
-- larger of the two, never the sum, so seeding twice or racing a settle counts nothing
-- twice; a seed computed for a period that has ended since changes nothing.
--
-- v2: with budget_lib v2 (and a floor held at MAX_COUNTER, as every counter is).
--
-- KEYS: 1 holds, 2 hold, 3 reclaimed (as reserve v2; the library names them), 4.. counters.
-- ARGV: 1 now ms ("" = Redis TIME), then per counter: period, pid, floor.
-- Returns the number of counters raised.

local now = clock(ARGV[1])
local raised = 0
for i = 1, #KEYS - 3 do
  local a = 2 + (i - 1) * 3
  local period, pid, floor = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if period_id(period, now) == pid then
    local spent = current(KEYS[3 + i], period, pid)
    if tonumber(floor) > tonumber(MAX_COUNTER) then floor = MAX_COUNTER end
    if tonumber(floor) > spent then
      redis.call('HSET', KEYS[3 + i], 'spent', floor)
      raised = raised + 1
    end
  end
end
return raised
