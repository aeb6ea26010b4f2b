package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches the three keys of ONE throttle key only (failures,
// reservations, ban), which share a hash tag, so each call is atomic and
// Cluster-safe. Times come from the server's TIME in microseconds, so
// instances with skewed clocks agree. A script never reads a key it was not
// passed.
//
// KEYS[1] failures: sorted set, member = reservation id, score = failure time
//         (µs); at most limit members (the newest), TTL = window.
// KEYS[2] reservations in flight: sorted set, member = reservation id,
//         score = lease deadline (µs); expired members are dropped on every
//         call, the key's TTL is the latest lease.
// KEYS[3] ban: string, SET with PX = ban; its PTTL is the rest of the ban.

// nowLua reads the server clock. replicate_commands makes TIME usable before
// a write on Redis < 5 (effects replication is the default since 5; the call
// is a no-op there and gone in Redis 7.4+ builds without it, hence the test).
const nowLua = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// reserveScript: ARGV limit, window (µs), lease (µs), reservation id.
// Returns {0, pttl} banned, {1, 0} failures + in flight reach the limit,
// {2, 0} reserved.
var reserveScript = redis.NewScript(nowLua + `
local pttl = redis.call('PTTL', KEYS[3])
if pttl > 0 then return {0, pttl} end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local inflight = redis.call('ZCARD', KEYS[2])
local fails = redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), '+inf')
if fails + inflight >= limit then return {1, 0} end
redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[2], math.floor(lease / 1000) + 1)
return {2, 0}
`)

// commitScript: ARGV limit, window (µs), ban (ms), reservation id.
// Returns 1 when this failure started a ban, else 0. A failure on a banned
// key is ignored (it neither counts nor extends the ban).
var commitScript = redis.NewScript(nowLua + `
redis.call('ZREM', KEYS[2], ARGV[4])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(limit + 1))
if redis.call('ZCARD', KEYS[1]) >= limit then
	local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
	if now - tonumber(oldest[2]) < window then
		redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
		redis.call('DEL', KEYS[1])
		return 1
	end
end
redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1)
return 0
`)

// releaseScript: ARGV reservation id, clear (1: a successful login clears
// the failures). Returns 0.
var releaseScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return 0
`)
