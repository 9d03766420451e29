/**
 * The reservation store in Redis (cluster mode), through `ioredis`. Each
 * operation is one Lua script, so it is atomic across every node, and every
 * expiry is on the Redis server's clock (`TIME`), never a node's:
 *
 * - `<prefix>quota:<kind>:<agency>`: a sorted set of reservation ids scored by expiry (ms);
 * - `<prefix>quota:<kind>:<agency>:cam:<camera>`: the same for one camera;
 * - `<prefix>quota:res:<id>`: who holds the reservation, and the two sets it is in (one string).
 *
 * Renew, release and get find the sets through the reservation's record, so
 * they need only its id (the media path knows no more). Scripts touch keys
 * they compute, so this needs one Redis server (or a primary with
 * replicas), not Redis Cluster. Every key expires with its last reservation,
 * so an idle agency costs nothing.
 */
import { Effect, Option } from "effect"
import { Redis } from "ioredis"
import { QuotaUnavailable, type StreamKind } from "./QuotaModel.ts"
import type { Admission, Reservation, ReservationStoreShape } from "./ReservationStore.ts"

/** The server's clock in ms, and `key` kept alive for at least `ttl` ms. */
const helpers = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep(key, ttl)
  local left = redis.call('PTTL', key)
  if left < ttl then redis.call('PEXPIRE', key, ttl) end
end
`

/**
 * Admits a batch in order, atomically. ARGV[1]: the key prefix; then 8 per
 * request (i from 0, at 8i+2..8i+9): id, ttl, limit (-1: none), camera
 * limit (-1: none), agency, camera, holder, kind. The keys are made here
 * from those (so the batch travels small). Answers 4 numbers per request:
 * { 1, inUse, expiresAt, 0 } or { 0, inUse, limit, scope (0 agency, 1 camera) }.
 * Each set is swept and counted once per batch, and its expiry set once at
 * the end.
 */
const admitScript = `${helpers}
local now = nowMs()
local out = {}
local counts = {}
local ttls = {}
local function counted(set)
  local n = counts[set]
  if n == nil then
    redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
    n = redis.call('ZCARD', set)
    counts[set] = n
  end
  return n
end
local function touched(set, ttl)
  if (ttls[set] or 0) < ttl then ttls[set] = ttl end
end
local prefix = ARGV[1]
for i = 0, (#ARGV - 1) / 8 - 1 do
  local a = 8 * i + 1
  local set = prefix .. 'quota:' .. ARGV[a + 8] .. ':' .. ARGV[a + 5]
  local cameraSet = set .. ':cam:' .. ARGV[a + 6]
  local record = prefix .. 'quota:res:' .. ARGV[a + 1]
  local id = ARGV[a + 1]
  local ttl = tonumber(ARGV[a + 2])
  local expires = now + ttl
  local limit = tonumber(ARGV[a + 3])
  local cameraLimit = tonumber(ARGV[a + 4])
  local inUse = counted(set)
  local onCamera = counted(cameraSet)
  local answer
  if redis.call('ZSCORE', set, id) then
    redis.call('ZADD', set, expires, id)
    redis.call('ZADD', cameraSet, expires, id)
    redis.call('PEXPIRE', record, ttl)
    answer = { 1, inUse, expires, 0 }
  elseif limit >= 0 and inUse >= limit then
    answer = { 0, inUse, limit, 0 }
  elseif cameraLimit >= 0 and onCamera >= cameraLimit then
    answer = { 0, onCamera, cameraLimit, 1 }
  else
    redis.call('ZADD', set, expires, id)
    redis.call('ZADD', cameraSet, expires, id)
    redis.call('SET', record, table.concat({ set, cameraSet, ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8] }, '\\n'), 'PX', ttl)
    counts[set] = inUse + 1
    counts[cameraSet] = onCamera + 1
    answer = { 1, inUse + 1, expires, 0 }
  end
  touched(set, ttl)
  touched(cameraSet, ttl)
  for j = 1, 4 do out[4 * i + j] = answer[j] end
end
for set, ttl in pairs(ttls) do keep(set, ttl) end
return out
`

/**
 * The reservation's fields (set, camera set, agency, camera, holder, kind)
 * and expiry, or false when it is gone (an expired one is removed).
 */
const findHelper = `${helpers}
local function find(record, id, now)
  local value = redis.call('GET', record)
  if not value then return false end
  local r = {}
  for field in string.gmatch(value, '[^\\n]+') do r[#r + 1] = field end
  local score = redis.call('ZSCORE', r[1], id)
  if (not score) or tonumber(score) <= now then
    redis.call('ZREM', r[1], id)
    redis.call('ZREM', r[2], id)
    redis.call('DEL', record)
    return false
  end
  return r, tonumber(score)
end
`

/** KEYS: reservation record. ARGV: id, ttl. Answers { expiresAt, agency, camera, holder, kind } or nil. */
const renewScript = `${findHelper}
local now = nowMs()
local ttl = tonumber(ARGV[2])
local r = find(KEYS[1], ARGV[1], now)
if not r then return nil end
local expires = now + ttl
redis.call('ZADD', r[1], 'XX', expires, ARGV[1])
redis.call('ZADD', r[2], 'XX', expires, ARGV[1])
keep(r[1], ttl) keep(r[2], ttl) redis.call('PEXPIRE', KEYS[1], ttl)
return { expires, r[3], r[4], r[5], r[6] }
`

/** KEYS: reservation record. ARGV: id. Answers what was released, or nil. */
const releaseScript = `${findHelper}
local r, expires = find(KEYS[1], ARGV[1], nowMs())
if not r then return nil end
redis.call('ZREM', r[1], ARGV[1])
redis.call('ZREM', r[2], ARGV[1])
redis.call('DEL', KEYS[1])
return { expires, r[3], r[4], r[5], r[6] }
`

/** KEYS: reservation record. ARGV: id. */
const getScript = `${findHelper}
local r, expires = find(KEYS[1], ARGV[1], nowMs())
if not r then return nil end
return { expires, r[3], r[4], r[5], r[6] }
`

/** KEYS: agency set. */
const usageScript = `${helpers}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs())
return redis.call('ZCARD', KEYS[1])
`

type Reply = [number | string, string, string, string, string] | null

interface ScriptCommands {
  vmsQuotaAdmit(numberOfKeys: number, ...args: Array<string | number>): Promise<Array<number>>
  vmsQuotaRenew(record: string, id: string, ttl: number): Promise<Reply>
  vmsQuotaRelease(record: string, id: string): Promise<Reply>
  vmsQuotaGet(record: string, id: string): Promise<Reply>
  vmsQuotaUsage(set: string): Promise<number>
}

/** A store on `redis` under `prefix` (the cluster's namespace, so clusters and tests never meet). */
export const make = (redis: Redis, prefix: string): ReservationStoreShape => {
  redis.defineCommand("vmsQuotaAdmit", { lua: admitScript })
  redis.defineCommand("vmsQuotaRenew", { numberOfKeys: 1, lua: renewScript })
  redis.defineCommand("vmsQuotaRelease", { numberOfKeys: 1, lua: releaseScript })
  redis.defineCommand("vmsQuotaGet", { numberOfKeys: 1, lua: getScript })
  redis.defineCommand("vmsQuotaUsage", { numberOfKeys: 1, lua: usageScript })
  const commands = redis as unknown as ScriptCommands
  const agencySet = (kind: StreamKind, agencyId: string) => `${prefix}quota:${kind}:${agencyId}`
  const record = (id: string) => `${prefix}quota:res:${id}`
  const call = <A>(what: string, run: () => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (error) => new QuotaUnavailable({ message: `quota store (Redis) failed to ${what}: ${String(error)}` })
    })
  const reservation = (id: string, reply: Reply): Option.Option<Reservation> =>
    reply === null ? Option.none() : Option.some({
      id,
      expiresAtMs: Number(reply[0]),
      agencyId: reply[1],
      cameraId: reply[2],
      holder: reply[3],
      kind: reply[4] as StreamKind
    })
  return {
    admitMany: (requests) => {
      if (requests.length === 0) return Effect.succeed([])
      const args: Array<string | number> = [prefix]
      for (const request of requests) {
        args.push(
          request.id,
          request.ttlMs,
          request.limit ?? -1,
          request.perCameraLimit ?? -1,
          request.agencyId,
          request.cameraId,
          request.holder,
          request.kind
        )
      }
      return call("admit", () => commands.vmsQuotaAdmit(0, ...args)).pipe(
        Effect.map((flat) =>
          requests.map((_, i): Admission =>
            flat[4 * i] === 1
              ? { _tag: "Granted", inUse: flat[4 * i + 1]!, expiresAtMs: flat[4 * i + 2]! }
              : { _tag: "Refused", inUse: flat[4 * i + 1]!, limit: flat[4 * i + 2]!, scope: flat[4 * i + 3] === 1 ? "camera" : "agency" }
          )
        )
      )
    },
    renew: (id, ttlMs) => call("renew", () => commands.vmsQuotaRenew(record(id), id, ttlMs)).pipe(Effect.map((r) => reservation(id, r))),
    release: (id) => call("release", () => commands.vmsQuotaRelease(record(id), id)).pipe(Effect.map((r) => reservation(id, r))),
    get: (id) => call("read", () => commands.vmsQuotaGet(record(id), id)).pipe(Effect.map((r) => reservation(id, r))),
    usage: (agencyId, kind) => call("count", () => commands.vmsQuotaUsage(agencySet(kind, agencyId)))
  }
}

/** A connection for the store, closed with the scope. Commands issued together travel in one write. */
export const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 2, lazyConnect: false })),
    (client) => Effect.promise(() => client.quit().catch(() => "OK"))
  )
