-- Force a breaker closed (operator action). KEYS[1] breaker hash, KEYS[2] trial leases.
-- Returns the state before the reset.
local h = redis.call('HMGET', KEYS[1], 'state', 'generation')
local state = h[1] or 'closed'
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'generation', tonumber(h[2] or '0') + 1)
redis.call('HDEL', KEYS[1], 'opened_at', 'half_opened_at')
redis.call('DEL', KEYS[2])
return state
