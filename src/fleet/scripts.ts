/**
 * The fleet's Lua scripts. Each runs atomically in Redis, reads time from Redis's own
 * clock (TIME) so nodes' clocks never need to agree, and touches keys of one hash slot
 * (the key names carry a `{tag}`) so they run on Redis Cluster too.
 */
import { Script } from './redis-link.js';

/**
 * `consistency: strong`: a token bucket (not a sliding window: it is what a local limit
 * is, so a route keeps the same burst and rate semantics when it goes global), one hash
 * per limit. ARGV: rate per second, burst. Returns {1, 0} admitted or {0, retry-after ms}.
 */
export const TAKE_TOKEN = new Script(
  1,
  `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(v[1])
local stamp = tonumber(v[2])
if tokens == nil or stamp == nil then tokens = burst; stamp = now end
if now > stamp then tokens = math.min(burst, tokens + (now - stamp) * rate / 1000); stamp = now end
local ok = 0
local wait = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {ok, wait}`,
);

/**
 * `consistency: local`: record this node's running count and read everyone's, in one
 * round trip. ARGV: node, "boot:count", expiry ms. Returns HGETALL's flat list.
 */
export const TALLY = new Script(
  1,
  `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGETALL', KEYS[1])`,
);

/**
 * Membership: this node's heartbeat, and the live nodes. KEYS: the last-seen sorted set,
 * the info hash. ARGV: node, info JSON, ms after which a silent node is gone. Drops the
 * gone ones; returns {redis now ms, name, last seen ms, info, name, ...}.
 */
export const HEARTBEAT = new Script(
  2,
  `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, n in ipairs(gone) do redis.call('ZREM', KEYS[1], n); redis.call('HDEL', KEYS[2], n) end
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {tostring(now)}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = live[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or '{}'
end
return out`,
);

/** Membership: a node leaving says so, rather than being missed for three beats. KEYS as HEARTBEAT; ARGV: node. */
export const LEAVE = new Script(
  2,
  `redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1`,
);

/**
 * Shared control: stamp a change with the next version, keep it (so a node that starts
 * later, or comes back from an outage, reads it) and announce it. KEYS: the version
 * counter, the changes hash. ARGV: field, change JSON, channel. Returns the version.
 */
export const CONTROL = new Script(
  2,
  `local v = redis.call('INCR', KEYS[1])
local msg = v .. ' ' .. ARGV[2]
redis.call('HSET', KEYS[2], ARGV[1], msg)
redis.call('PUBLISH', ARGV[3], msg)
return v`,
);

/**
 * Shared health: record this node's bad endpoints for a cluster and read every node's,
 * dropping reports older than the stale age (a node gone or cut off votes no more).
 * KEYS: the cluster's reports hash. ARGV: node, bad-list JSON, expiry ms, stale ms,
 * channel to announce the change on ('' for a periodic refresh). Returns {node, JSON, ...}.
 */
export const HEALTH = new Script(
  1,
  `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sp = string.find(v, ' ', 1, true)
  if sp ~= nil and now - tonumber(string.sub(v, 1, sp - 1)) <= tonumber(ARGV[4]) then
    out[#out + 1] = all[i]
    out[#out + 1] = string.sub(v, sp + 1)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[1]) end
return out`,
);
