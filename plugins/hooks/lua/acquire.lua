-- Admit or refuse one call. Atomic: the whole decision happens inside Redis.
-- KEYS[1] breaker hash, KEYS[2] half-open trial leases (zset token -> lease expiry ms),
-- KEYS[3] index of known breakers
-- ARGV[1] recovery timeout ms, ARGV[2] max trial calls in half-open, ARGV[3] trial lease ms,
-- ARGV[4] token of this call, ARGV[5] index member ("breaker|target")
-- Returns {decision, state, generation, failures, retry_after_ms, transition}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'failures', 'opened_at')
local state = h[1] or 'closed'
local generation = tonumber(h[2] or '0')
local failures = tonumber(h[3] or '0')

if not h[1] then
  -- first use of this breaker and target: make it visible to operators
  redis.call('HSET', KEYS[1], 'state', 'closed', 'generation', 0, 'failures', 0)
  redis.call('SADD', KEYS[3], ARGV[5])
end
if state == 'closed' then
  return {'allow', 'closed', generation, failures, 0, ''}
end

local recovery = tonumber(ARGV[1])
local max_trials = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])

if state == 'open' then
  local reopen_at = tonumber(h[4] or '0') + recovery
  if now < reopen_at then
    return {'reject', 'open', generation, failures, reopen_at - now, ''}
  end
  generation = generation + 1
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'generation', generation, 'half_opened_at', now)
  redis.call('DEL', KEYS[2])
  redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], lease * 2)
  return {'trial', 'half_open', generation, failures, 0, 'half_open'}
end

-- half_open: admit while fewer than max_trials unexpired leases are held
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) < max_trials then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], lease * 2)
  return {'trial', 'half_open', generation, failures, 0, ''}
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local retry_after = tonumber(first[2]) - now
return {'reject', 'half_open', generation, failures, math.max(retry_after, 1), ''}
