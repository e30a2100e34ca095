-- A call admitted by acquire.lua failed in a way that counts against the dependency.
-- KEYS[1] breaker hash, KEYS[2] trial leases, KEYS[3] index of known breakers
-- ARGV[1] token, ARGV[2] generation seen at admission, ARGV[3] failure threshold,
-- ARGV[4] error summary, ARGV[5] index member ("breaker|target")
-- Returns the transition ('open') or '' when nothing changed state.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'generation')
local state = h[1] or 'closed'
local generation = tonumber(h[2] or '0')
redis.call('SADD', KEYS[3], ARGV[5])

if state == 'half_open' then
  if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'generation', generation + 1,
               'last_failure_at', now, 'last_error', ARGV[4])
    redis.call('HINCRBY', KEYS[1], 'failures', 1)
    redis.call('DEL', KEYS[2])
    return 'open'
  end
  return ''
end

if state == 'closed' and tonumber(ARGV[2]) == generation then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('HSET', KEYS[1], 'state', 'closed', 'generation', generation, 'last_failure_at', now,
             'last_error', ARGV[4])
  if failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'generation', generation + 1)
    return 'open'
  end
end
return ''
