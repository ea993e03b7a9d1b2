package routing

import "github.com/redis/go-redis/v9"

// The Lua scripts of RedisStore. Each runs atomically in Redis, so a check and the
// change it guards can never be split by another writer.
//
// Every script gets the same KEYS, all in one cluster hash slot ({cluster}):
//
//	KEYS[1] meta        hash: version, cluster_id, incarnation, next_pid
//	KEYS[2] topics      hash: name -> topic JSON
//	KEYS[3] topic_revs  hash: name -> the metadata version that last wrote the topic
//	KEYS[4] nodes       hash: id -> node JSON
//	KEYS[5] proxies     hash: id -> proxy JSON
//	KEYS[6] leases      hash: name -> "token|expires_unix_ms|holder"
//	KEYS[7] acls        hash: ACL binding JSON -> "1"
//	KEYS[8] scram       hash: user NUL mechanism -> SCRAM credential JSON
//
// and the same first ARGV, used only when meta is missing (a new or emptied Redis):
//
//	ARGV[1] a fresh incarnation id
//	ARGV[2] the cluster id to keep (the one this process knew) or a fresh one
//	ARGV[3] the version to start from, above any version this process has seen
//	ARGV[4] the producer id to start from, above any id this process handed out
//	ARGV[5] the channel on which changes are published
//
// Script arguments proper start at ARGV[6]. Versions and ids stay below 2^53, where
// Lua's numbers are exact.
const redisPreamble = `
local function ensure()
  if redis.call('HEXISTS', KEYS[1], 'incarnation') == 1 then return end
  redis.call('HSETNX', KEYS[1], 'cluster_id', ARGV[2])
  redis.call('HSET', KEYS[1], 'incarnation', ARGV[1], 'version', ARGV[3], 'next_pid', ARGV[4])
end
local function bump()
  local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  redis.call('PUBLISH', ARGV[5], v)
  return v
end
ensure()
`

func newRedisScript(body string) *redis.Script { return redis.NewScript(redisPreamble + body) }

var (
	// scriptMeta returns version, cluster id and incarnation.
	scriptMeta = newRedisScript(`
return redis.call('HMGET', KEYS[1], 'version', 'cluster_id', 'incarnation')
`)

	// scriptSnapshot returns version, cluster id, incarnation, the flat HGETALL
	// arrays of topic revisions, nodes, proxies and leases, and the ACL bindings; with
	// ARGV[6] == "full" also every topic's JSON.
	scriptSnapshot = newRedisScript(`
local m = redis.call('HMGET', KEYS[1], 'version', 'cluster_id', 'incarnation')
local out = {m[1], m[2], m[3], redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]), redis.call('HGETALL', KEYS[6]), redis.call('HKEYS', KEYS[7])}
if ARGV[6] == 'full' then out[9] = redis.call('HGETALL', KEYS[2]) end
return out
`)

	// scriptTopicBodies returns the JSON of the topics named in ARGV[8:] if the version
	// is still ARGV[6] and the incarnation ARGV[7]; otherwise nil (read again).
	scriptTopicBodies = newRedisScript(`
local m = redis.call('HMGET', KEYS[1], 'version', 'incarnation')
if m[1] ~= ARGV[6] or m[2] ~= ARGV[7] then return false end
local out = {}
for i = 8, #ARGV do out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i]) end
return out
`)

	// scriptReadTopic returns one topic's JSON and revision (nil, nil if absent).
	scriptReadTopic = newRedisScript(`
return {redis.call('HGET', KEYS[2], ARGV[6]), redis.call('HGET', KEYS[3], ARGV[6])}
`)

	// scriptCreateTopic adds topic ARGV[6] with JSON ARGV[7]: {"ok", version} or {"exists"}.
	scriptCreateTopic = newRedisScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[6]) == 1 then return {'exists'} end
local v = bump()
redis.call('HSET', KEYS[2], ARGV[6], ARGV[7])
redis.call('HSET', KEYS[3], ARGV[6], v)
return {'ok', v}
`)

	// scriptDeleteTopic removes topic ARGV[6]: {"ok", version} or {"unknown"}.
	scriptDeleteTopic = newRedisScript(`
if redis.call('HDEL', KEYS[2], ARGV[6]) == 0 then return {'unknown'} end
redis.call('HDEL', KEYS[3], ARGV[6])
return {'ok', bump()}
`)

	// scriptPutTopic replaces topic ARGV[6] with JSON ARGV[8] if its revision is still
	// ARGV[7]: {"ok", version}, {"unknown"} or {"moved"} (read it again).
	scriptPutTopic = newRedisScript(`
local rev = redis.call('HGET', KEYS[3], ARGV[6])
if not rev then return {'unknown'} end
if tonumber(rev) ~= tonumber(ARGV[7]) then return {'moved'} end
local v = bump()
redis.call('HSET', KEYS[2], ARGV[6], ARGV[8])
redis.call('HSET', KEYS[3], ARGV[6], v)
return {'ok', v}
`)

	// scriptReadTopics returns the JSON and revision of each topic named in ARGV[6:],
	// flat: {json1, rev1, json2, rev2, ...}, with false for a missing topic's pair.
	scriptReadTopics = newRedisScript(`
local out = {}
for i = 6, #ARGV do
  out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i])
  out[#out + 1] = redis.call('HGET', KEYS[3], ARGV[i])
end
return out
`)

	// scriptPutTopics replaces several topics at once, given as triples (name, expected
	// revision, JSON) from ARGV[6], if every one's revision is unchanged; they share one
	// new version: {"ok", version} or {"moved"} (read them again) and nothing written.
	scriptPutTopics = newRedisScript(`
for i = 6, #ARGV, 3 do
  local rev = redis.call('HGET', KEYS[3], ARGV[i])
  if not rev or tonumber(rev) ~= tonumber(ARGV[i + 1]) then return {'moved'} end
end
local v = bump()
for i = 6, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[3], ARGV[i], v)
end
return {'ok', v}
`)

	// scriptRegister sets field ARGV[7] of KEYS[ARGV[6]] (nodes or proxies) to ARGV[8]:
	// {"ok", version}.
	scriptRegister = newRedisScript(`
redis.call('HSET', KEYS[tonumber(ARGV[6])], ARGV[7], ARGV[8])
return {'ok', bump()}
`)

	// scriptAcquireLease gives lease ARGV[6] to holder ARGV[7] for ARGV[8] ms, by the
	// Redis server's clock so that clients' clocks need not agree:
	// {"renewed", token, expires_ms}, {"ok", token, expires_ms, version} or
	// {"held", holder, expires_ms}.
	scriptAcquireLease = newRedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = string.format('%d', now + tonumber(ARGV[8]))
local token = 0
local cur = redis.call('HGET', KEYS[6], ARGV[6])
if cur then
  local tok, curExp, holder = string.match(cur, '^(%d+)|(%d+)|(.*)$')
  if holder == ARGV[7] then
    redis.call('HSET', KEYS[6], ARGV[6], tok .. '|' .. exp .. '|' .. holder)
    return {'renewed', tok, exp}
  end
  if now < tonumber(curExp) then return {'held', holder, curExp} end
  token = tonumber(tok)
end
local tok = string.format('%d', token + 1)
redis.call('HSET', KEYS[6], ARGV[6], tok .. '|' .. exp .. '|' .. ARGV[7])
return {'ok', tok, exp, bump()}
`)

	// scriptReleaseLease ends holder ARGV[7]'s lease ARGV[6] now, keeping its token:
	// {"ok", version} or {"notheld"}.
	scriptReleaseLease = newRedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HGET', KEYS[6], ARGV[6])
if not cur then return {'notheld'} end
local tok, curExp, holder = string.match(cur, '^(%d+)|(%d+)|(.*)$')
if holder ~= ARGV[7] or tonumber(curExp) <= now then return {'notheld'} end
redis.call('HSET', KEYS[6], ARGV[6], tok .. '|' .. string.format('%d', now) .. '|' .. holder)
return {'ok', bump()}
`)

	// scriptCreateACLs adds the ACL bindings in ARGV[6:], bumping the version if any
	// was new: {"ok", version}.
	scriptCreateACLs = newRedisScript(`
local added = 0
for i = 6, #ARGV do added = added + redis.call('HSETNX', KEYS[7], ARGV[i], '1') end
if added == 0 then return {'ok', redis.call('HGET', KEYS[1], 'version')} end
return {'ok', bump()}
`)

	// scriptDeleteACLs removes the ACL bindings in ARGV[6:], bumping the version if any
	// was stored: {"ok", version, deleted...}.
	scriptDeleteACLs = newRedisScript(`
local deleted = {}
for i = 6, #ARGV do
  if redis.call('HDEL', KEYS[7], ARGV[i]) == 1 then deleted[#deleted + 1] = ARGV[i] end
end
local v = redis.call('HGET', KEYS[1], 'version')
if #deleted > 0 then v = bump() end
return {'ok', v, deleted}
`)

	// scriptPutScram sets credential ARGV[6] to JSON ARGV[7]: {"ok", version}. Credentials
	// are not in snapshots, so the version does not move.
	scriptPutScram = newRedisScript(`
redis.call('HSET', KEYS[8], ARGV[6], ARGV[7])
return {'ok', redis.call('HGET', KEYS[1], 'version')}
`)

	// scriptDeleteScram removes credential ARGV[6]: {"ok", version} or {"unknown"}.
	scriptDeleteScram = newRedisScript(`
if redis.call('HDEL', KEYS[8], ARGV[6]) == 0 then return {'unknown'} end
return {'ok', redis.call('HGET', KEYS[1], 'version')}
`)

	// scriptGetScram returns credential ARGV[6]'s JSON, or nil.
	scriptGetScram = newRedisScript(`
return redis.call('HGET', KEYS[8], ARGV[6])
`)

	// scriptAllScram returns every credential's JSON.
	scriptAllScram = newRedisScript(`
return redis.call('HVALS', KEYS[8])
`)

	// scriptAllocatePIDs reserves ARGV[6] producer ids and returns the first.
	scriptAllocatePIDs = newRedisScript(`
local n = tonumber(ARGV[6])
return redis.call('HINCRBY', KEYS[1], 'next_pid', n) - n
`)
)
