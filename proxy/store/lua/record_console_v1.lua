-- record_console v1 (Redis Cluster): the console's figures of one record, in the {g} slot,
-- sent beside record_usage_v3 (which then carries no console keys). Idempotent on its own:
-- the request id is claimed in a per-day hash first, so a replay changes nothing here.
--
-- KEYS: 1 claimed request ids of the day (hash), then the console keys (see console_lib).
-- ARGV: 1 request_id, 2 record JSON, 3 TTL seconds of the data keys, 4 TTL seconds of the
--       claimed ids, 5 "route<US>provider<US>model" (escaped), 6 alternative count m, then m
--       (alternative (escaped), what-if nano-dollars) pairs, then the 5 console values (see
--       console_lib), then (metric, increment) pairs.
-- Returns 1 when applied, 0 when request_id was already counted here.

if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then
  return 0
end
local first_of_day = redis.call('HLEN', KEYS[1]) == 1
if first_of_day then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
local alt_first, alt_last = 7, 6 + 2 * tonumber(ARGV[6])
count_console(2, ARGV[2], ARGV[3], ARGV[5], alt_first, alt_last, alt_last + 1, alt_last + 6, first_of_day)
return 1
