-- The token bucket as GCRA, on Redis: one key holds the bucket's
-- theoretical arrival time (TAT) and the interval it was written with, as
-- "TAT:interval", in microseconds. A refusal writes nothing, unless it found
-- the bucket written with other numbers (below).
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
local tat = nil
-- Whether the bucket was written with another interval (the limit was
-- changed since): its debt is then kept in tokens, refilled at the new
-- interval, and written back even by a refusal.
local converted = false
local stored = redis.call('GET', KEYS[1])
if stored then
  local at, written = string.match(stored, '^(%d+):(%d+)$')
  tat = tonumber(at)
  written = tonumber(written)
  if tat ~= nil and written ~= nil and written ~= interval and tat > now then
    -- now + ceil(owed * interval / written), in parts that stay exact: the
    -- whole tokens owed, then the rest of one rounded up.
    local owed = tat - now
    local whole = math.floor(owed / written)
    local rest = owed - whole * written
    tat = now + whole * interval + math.ceil(rest * interval / written)
    converted = true
  end
end
if tat == nil or tat < now then
  tat = now
end
-- Keeps the bucket's new TAT until it is full again, and at least 100 ms:
-- a key due to end within a round trip is not lost to the next decision
-- on a clock a little behind (another instance's, with the layer's clock).
-- Kept longer, a full bucket decides the same.
local function keep(new_tat)
  redis.call('SET', KEYS[1], string.format('%.0f:%.0f', new_tat, interval), 'PX',
    math.max(math.ceil((new_tat - now) / 1000), 100))
end
-- A lease takes as many tokens as the bucket holds now, up to the batch.
local held = math.floor((now + interval * capacity - tat) / interval)
if batch > cost and held >= cost then
  local taken = math.min(batch, held)
  local leased_tat = tat + taken * interval
  keep(leased_tat)
  return {1, 0, leased_tat - now, taken}
end
local new_tat = tat + cost * interval
local wait = new_tat - interval * capacity - now
if wait < 0 then
  wait = 0
end
if wait > max_wait then
  if converted then
    keep(tat)
  end
  return {0, wait, tat - now, 0}
end
keep(new_tat)
return {1, wait, new_tat - now, cost}
