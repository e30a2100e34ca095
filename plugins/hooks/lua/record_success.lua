-- A call admitted by acquire.lua succeeded.
-- KEYS[1] breaker hash, KEYS[2] trial leases; ARGV[1] token, ARGV[2] generation seen at admission
-- Returns the transition ('closed') or '' when nothing changed state.
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'failures')
local state = h[1] or 'closed'
local generation = tonumber(h[2] or '0')

if state == 'half_open' then
  if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'generation', generation + 1,
               'closed_at', now)
    redis.call('HDEL', KEYS[1], 'opened_at', 'half_opened_at')
    redis.call('DEL', KEYS[2])
    return 'closed'
  end
  return ''
end

if state == 'closed' and tonumber(ARGV[2]) == generation and tonumber(h[3] or '0') > 0 then
  redis.call('HSET', KEYS[1], 'failures', 0)
end
return ''
