import { createHash } from 'node:crypto'

/** A Lua script and its SHA1, for EVALSHA with an EVAL fallback when Redis does not know it yet. */
export interface LuaScript {
  readonly source: string
  readonly sha: string
}

function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * Shared head of the writing scripts: the channel's epoch, created when its
 * position is gone (first use, expiry, eviction, or a Redis that restarted
 * empty). A new epoch starts a new history, so any stream left over from the
 * old one is dropped: its ids would collide with the new offsets.
 * KEYS[1] position, KEYS[2] history; ARGV[1] a fresh random epoch from the caller
 * (scripts have no good randomness of their own).
 */
const EPOCH_OF_CHANNEL = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`

/**
 * Appends one message. Atomic, so concurrent publishers on any number of
 * nodes get distinct, contiguous offsets, and a notification never overtakes
 * its history entry.
 * KEYS[3] is the notify channel (a key here, so Cluster checks its slot too).
 * ARGV: [1] fresh epoch, [2] event as a JSON string, [3] data as JSON,
 * [4] history size, [5] history TTL ms, [6] notify command (PUBLISH or SPUBLISH).
 * Notification: `<epoch> <offset> [<event>,<data>]`.
 * Returns { epoch, offset }.
 */
export const PUBLISH_SCRIPT = luaScript(`${EPOCH_OF_CHANNEL}
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local historySize = tonumber(ARGV[4])
if historySize > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', historySize, offset .. '-0', 'event', ARGV[2], 'data', ARGV[3], 'at', now)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call(ARGV[6], KEYS[3], epoch .. ' ' .. offset .. ' [' .. ARGV[2] .. ',' .. ARGV[3] .. ']')
return { epoch, offset }
`)

/**
 * The channel's position and its history after a point, for resume. Creates
 * the epoch when missing, like a publish would, so that a client that
 * subscribes before the first publish holds the epoch that publish will use.
 * Drops entries older than the TTL first, so they are never replayed.
 * ARGV: [1] fresh epoch, [2] the client's epoch ('' for none), [3] the
 * client's offset, [4] history TTL ms, [5] most entries to return (0: all).
 * Returns { epoch, newest offset, { { id, { field, value, ... } }, ... } }:
 * the oldest entries after the client's offset when its epoch is current,
 * else the oldest of all.
 */
export const RECOVER_SCRIPT = luaScript(`${EPOCH_OF_CHANNEL}
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local newest = tonumber(redis.call('HGET', KEYS[1], 'offset'))
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
local cutoff = now - tonumber(ARGV[4])
if first and tonumber(first[2][6]) <= cutoff then
  -- Entries are in time order: find the first one young enough, trim everything before it.
  local kept = 0
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    if tonumber(entry[2][6]) > cutoff then
      kept = entry[1]
      break
    end
  end
  if kept == 0 then redis.call('DEL', KEYS[2]) else redis.call('XTRIM', KEYS[2], 'MINID', kept) end
end
local from = '-'
if ARGV[2] == epoch then
  local since = tonumber(ARGV[3])
  if since >= newest then return { epoch, newest, {} } end
  from = (since + 1) .. '-0'
end
local limit = tonumber(ARGV[5])
if limit > 0 then return { epoch, newest, redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', limit) } end
return { epoch, newest, redis.call('XRANGE', KEYS[2], from, '+') }
`)

/**
 * Reads history without writing anything: a node filling a hole in what it
 * delivered. ARGV: [1] first offset, [2] last offset ('+' for the newest).
 * Returns { epoch or false, newest offset, entries as in RECOVER_SCRIPT }.
 */
export const READ_SCRIPT = luaScript(`
local position = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
if not position[1] then return { false, 0, {} } end
local last = ARGV[2]
if last ~= '+' then last = last .. '-0' end
return { position[1], tonumber(position[2]), redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', last) }
`)

/**
 * Presence holds of one channel. A hold is `<node id><member id>` (node ids have a fixed length),
 * scored by when it expires; a member is on the channel while it has any hold, counted in
 * KEYS[3], so the first hold announces `join` and the last to go (released, or expired because its
 * node stopped renewing, e.g. killed) announces `leave`. Expired holds are swept on every call.
 * KEYS: [1] holds, [2] members (id → joinedAt), [3] counts, [4] notify channel.
 * ARGV: [1] 'hold' | 'release' | 'read', [2] node id, [3] how long a hold lives (ms), [4] notify command
 * (PUBLISH or SPUBLISH), [5..] member ids.
 * Returns the members hash (id, joinedAt, ...) for 'read', else nothing.
 */
export const PRESENCE_SCRIPT = luaScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function announce(action, id, joinedAt)
  redis.call(ARGV[4], KEYS[4], cjson.encode({ action = action, id = id, joinedAt = tonumber(joinedAt) }))
end
local function drop(id)
  if redis.call('HINCRBY', KEYS[3], id, -1) <= 0 then
    local joinedAt = redis.call('HGET', KEYS[2], id) or now
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[2], id)
    announce('leave', id, joinedAt)
  end
end
local nodeLength = string.len(ARGV[2])
for _, hold in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE')) do
  redis.call('ZREM', KEYS[1], hold)
  drop(string.sub(hold, nodeLength + 1))
end
local ttl = tonumber(ARGV[3])
if ARGV[1] == 'hold' then
  for i = 5, #ARGV do
    local id = ARGV[i]
    if redis.call('ZADD', KEYS[1], now + ttl, ARGV[2] .. id) == 1 and redis.call('HINCRBY', KEYS[3], id, 1) == 1 then
      redis.call('HSET', KEYS[2], id, now)
      announce('join', id, now)
    end
  end
elseif ARGV[1] == 'release' then
  for i = 5, #ARGV do
    if redis.call('ZREM', KEYS[1], ARGV[2] .. ARGV[i]) == 1 then drop(ARGV[i]) end
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
else
  -- Kept a while past the last renewal, so holds of a node that died are still swept.
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
  redis.call('PEXPIRE', KEYS[3], ttl * 2)
end
if ARGV[1] == 'read' then return redis.call('HGETALL', KEYS[2]) end
return false
`)
