/**
 * The reservation store in Redis (cluster mode), through `ioredis`. Each
 * operation is one Lua script, so it is atomic across every node, and every
 * expiry is on the Redis server's clock (`TIME`), never a node's:
 *
 * - `<prefix>quota:<kind>:<agency>`: a sorted set of reservation ids scored by expiry (ms);
 * - `<prefix>quota:<kind>:<agency>:cam:<camera>`: the same for one camera;
 * - `<prefix>quota:res:<id>`: who holds the reservation, and the two sets it is in.
 *
 * Renew, release and get find the sets through the reservation's hash, so
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
 * KEYS: agency set, camera set, reservation hash.
 * ARGV: id, ttl, limit (-1: none), camera limit (-1: none), agency, camera, holder, kind.
 * Answers { 1, inUse, expiresAt } or { 0, inUse, limit, scope }.
 */
const admitScript = `${helpers}
local now = nowMs()
local id = ARGV[1]
local ttl = tonumber(ARGV[2])
local expires = now + ttl
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local inUse = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], id) then
  redis.call('ZADD', KEYS[1], expires, id)
  redis.call('ZADD', KEYS[2], expires, id)
  keep(KEYS[1], ttl) keep(KEYS[2], ttl) redis.call('PEXPIRE', KEYS[3], ttl)
  return { 1, inUse, expires }
end
local limit = tonumber(ARGV[3])
if limit >= 0 and inUse >= limit then return { 0, inUse, limit, 'agency' } end
local cameraLimit = tonumber(ARGV[4])
if cameraLimit >= 0 then
  local onCamera = redis.call('ZCARD', KEYS[2])
  if onCamera >= cameraLimit then return { 0, onCamera, cameraLimit, 'camera' } end
end
redis.call('ZADD', KEYS[1], expires, id)
redis.call('ZADD', KEYS[2], expires, id)
redis.call('HSET', KEYS[3], 'agency', ARGV[5], 'camera', ARGV[6], 'holder', ARGV[7], 'kind', ARGV[8],
  'set', KEYS[1], 'cameraSet', KEYS[2])
keep(KEYS[1], ttl) keep(KEYS[2], ttl) redis.call('PEXPIRE', KEYS[3], ttl)
return { 1, inUse + 1, expires }
`

/** The reservation's fields, or false when it is gone (expired members are removed). */
const findHelper = `${helpers}
local function find(hash, id, now)
  local r = redis.call('HMGET', hash, 'set', 'cameraSet', 'agency', 'camera', 'holder', 'kind')
  if not r[1] then return false end
  local score = redis.call('ZSCORE', r[1], id)
  if (not score) or tonumber(score) <= now then
    redis.call('ZREM', r[1], id)
    redis.call('ZREM', r[2], id)
    redis.call('DEL', hash)
    return false
  end
  return r, tonumber(score)
end
`

/** KEYS: reservation hash. ARGV: id, ttl. Answers { expiresAt, agency, camera, holder, kind } or nil. */
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

/** KEYS: reservation hash. ARGV: id. Answers what was released, or nil. */
const releaseScript = `${findHelper}
local r, expires = find(KEYS[1], ARGV[1], nowMs())
if not r then return nil end
redis.call('ZREM', r[1], ARGV[1])
redis.call('ZREM', r[2], ARGV[1])
redis.call('DEL', KEYS[1])
return { expires, r[3], r[4], r[5], r[6] }
`

/** KEYS: reservation hash. ARGV: id. */
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
  vmsQuotaAdmit(...args: Array<string | number>): Promise<[number, number, number, string?]>
  vmsQuotaRenew(hash: string, id: string, ttl: number): Promise<Reply>
  vmsQuotaRelease(hash: string, id: string): Promise<Reply>
  vmsQuotaGet(hash: string, id: string): Promise<Reply>
  vmsQuotaUsage(set: string): Promise<number>
}

/** A store on `redis` under `prefix` (the cluster's namespace, so clusters and tests never meet). */
export const make = (redis: Redis, prefix: string): ReservationStoreShape => {
  redis.defineCommand("vmsQuotaAdmit", { numberOfKeys: 3, lua: admitScript })
  redis.defineCommand("vmsQuotaRenew", { numberOfKeys: 1, lua: renewScript })
  redis.defineCommand("vmsQuotaRelease", { numberOfKeys: 1, lua: releaseScript })
  redis.defineCommand("vmsQuotaGet", { numberOfKeys: 1, lua: getScript })
  redis.defineCommand("vmsQuotaUsage", { numberOfKeys: 1, lua: usageScript })
  const commands = redis as unknown as ScriptCommands
  const agencySet = (kind: StreamKind, agencyId: string) => `${prefix}quota:${kind}:${agencyId}`
  const hash = (id: string) => `${prefix}quota:res:${id}`
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
    admit: (request) =>
      call("admit", () =>
        commands.vmsQuotaAdmit(
          agencySet(request.kind, request.agencyId),
          `${agencySet(request.kind, request.agencyId)}:cam:${request.cameraId}`,
          hash(request.id),
          request.id,
          request.ttlMs,
          request.limit ?? -1,
          request.perCameraLimit ?? -1,
          request.agencyId,
          request.cameraId,
          request.holder,
          request.kind
        )).pipe(Effect.map(([ok, inUse, third, scope]): Admission =>
          ok === 1
            ? { _tag: "Granted", inUse, expiresAtMs: third }
            : { _tag: "Refused", inUse, limit: third, scope: scope === "camera" ? "camera" : "agency" }
        )),
    renew: (id, ttlMs) => call("renew", () => commands.vmsQuotaRenew(hash(id), id, ttlMs)).pipe(Effect.map((r) => reservation(id, r))),
    release: (id) => call("release", () => commands.vmsQuotaRelease(hash(id), id)).pipe(Effect.map((r) => reservation(id, r))),
    get: (id) => call("read", () => commands.vmsQuotaGet(hash(id), id)).pipe(Effect.map((r) => reservation(id, r))),
    usage: (agencyId, kind) => call("count", () => commands.vmsQuotaUsage(agencySet(kind, agencyId)))
  }
}

/** A connection for the store, closed with the scope. Commands issued together travel in one write. */
export const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 2, lazyConnect: false })),
    (client) => Effect.promise(() => client.quit().catch(() => "OK"))
  )
