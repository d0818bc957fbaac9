-- The token bucket as GCRA, on Redis: one key holds the bucket's
-- theoretical arrival time (TAT), in microseconds; a refusal writes nothing.
--
-- KEYS[1]  the bucket
-- ARGV[1]  microseconds between two tokens
-- ARGV[2]  the bucket's capacity (its burst)
-- ARGV[3]  the request's cost
-- ARGV[4]  the longest a request may wait for its tokens, in microseconds
-- ARGV[5]  now, in microseconds; empty: the server's own clock
-- ARGV[6]  the most tokens to take at once (a lease), at least the cost
--
-- Returns {verdict, wait, ahead, taken}: verdict 1 admitted (after `wait`
-- microseconds), 0 refused (come back after `wait`), -1 never (the cost
-- exceeds the capacity); `ahead`, how far the bucket's TAT lies past `now`
-- after the decision, in microseconds; `taken`, the tokens taken: the cost,
-- or, for a lease admitted at once, as many of ARGV[6] as the bucket holds. Lua numbers are doubles: every
-- value here stays below 2^53 (microseconds since 1970 are about 2^50).
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local batch = tonumber(ARGV[6]) or cost
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
if cost > capacity then
  return {-1, 0, 0, 0}
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
-- A lease takes as many tokens as the bucket holds now, up to the batch.
local held = math.floor((now + interval * capacity - tat) / interval)
if batch > cost and held >= cost then
  local taken = math.min(batch, held)
  local leased_tat = tat + taken * interval
  redis.call('SET', KEYS[1], string.format('%.0f', leased_tat), 'PX',
    math.max(math.ceil((leased_tat - now) / 1000), 1))
  return {1, 0, leased_tat - now, taken}
end
local new_tat = tat + cost * interval
local wait = new_tat - interval * capacity - now
if wait < 0 then
  wait = 0
end
if wait > max_wait then
  return {0, wait, tat - now, 0}
end
-- Kept until the bucket is full again, and not a moment longer.
local ttl = math.ceil((new_tat - now) / 1000)
if ttl < 1 then
  ttl = 1
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, wait, new_tat - now, cost}
