-- The sliding window counter (and the fixed window: one segment counted),
-- on Redis: one hash a key, a field per segment holding what it admitted,
-- `last`, the segment of the latest admission (reservations are made in
-- order), and `width`, the segment's length it was written with. A refusal
-- writes nothing but the removal of segments that have left every window,
-- unless it found the hash written with other segments (below).
--
-- KEYS[1]  the window
-- ARGV[1]  the most admitted in any window
-- ARGV[2]  microseconds a segment
-- ARGV[3]  how many segments a window counts, the current one included
-- ARGV[4]  the request's cost
-- ARGV[5]  the longest a request may wait for room, in microseconds
-- ARGV[6]  now, in microseconds; empty: the server's own clock
--
-- Returns {verdict, wait, 0, taken}, as the token bucket's script (no
-- leases: `taken` is the cost).
local limit = tonumber(ARGV[1])
local segment = tonumber(ARGV[2])
local counted = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
if cost > limit then
  return {-1, 0, 0, 0}
end
local current = math.floor(now / segment)
local counts = {}
local last = 0
local width = segment
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] == 'last' then
    last = tonumber(fields[i + 1])
  elseif fields[i] == 'width' then
    width = tonumber(fields[i + 1])
  else
    counts[tonumber(fields[i])] = tonumber(fields[i + 1])
  end
end
if width ~= segment then
  -- Written with other segments (the limit was changed since): each count
  -- moves to the new segment that holds its old segment's last instant, so
  -- a request is counted no shorter than before; the hash is written anew.
  local function moved(index)
    return math.floor(((index + 1) * width - 1) / segment)
  end
  local was = counts
  counts = {}
  for index, count in pairs(was) do
    local into = moved(index)
    counts[into] = (counts[into] or 0) + count
  end
  last = moved(last)
  redis.call('DEL', KEYS[1])
  for index, count in pairs(counts) do
    if index + counted > current then
      redis.call('HSET', KEYS[1], string.format('%.0f', index), count)
    end
  end
  redis.call('HSET', KEYS[1], 'last', string.format('%.0f', last), 'width', segment)
  redis.call('PEXPIRE', KEYS[1], math.max(math.ceil(((last + counted) * segment - now) / 1000), 100))
end
for index in pairs(counts) do
  if index + counted <= current then
    counts[index] = nil
    redis.call('HDEL', KEYS[1], string.format('%.0f', index))
  end
end
local function get(index)
  return counts[index] or 0
end
-- The first segment from `first` on whose window has room for `cost`.
local first = math.max(current, last)
local used = 0
for index = math.max(first - counted + 1, 0), first do
  used = used + get(index)
end
local target = first
while used + cost > limit do
  if target >= counted - 1 then
    used = used - get(target - counted + 1)
  end
  target = target + 1
  used = used + get(target)
end
local wait = math.max(target * segment - now, 0)
if wait > max_wait then
  return {0, wait, 0, 0}
end
redis.call('HINCRBY', KEYS[1], string.format('%.0f', target), cost)
redis.call('HSET', KEYS[1], 'last', string.format('%.0f', target), 'width', segment)
-- Kept until the latest admission has left the window.
local ttl = math.ceil(((target + counted) * segment - now) / 1000)
-- (At least 100 ms, as the bucket's: kept longer, a window whose segments
-- have all left decides the same.)
redis.call('PEXPIRE', KEYS[1], math.max(ttl, 100))
return {1, wait, 0, cost}
