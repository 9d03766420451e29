/**
 * Per-caller rate limits: a token bucket per user or API token holding a
 * minute's worth of calls, refilled continuously. In process on one node
 * (`layerMemory`); in Redis when `VMS_REDIS_URL` is set (`layerRedis`, one
 * Lua script, so the nodes of a cluster share each bucket). A refused call
 * learns how many seconds until one call is available again.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { Redis } from "ioredis"
import { NodeConfig } from "../config/NodeConfig.ts"
import type { Principal } from "./Principal.ts"

/** Calls per minute of users and tokens without a limit of their own. */
export const defaultPerMinute = 6_000

export interface Decision {
  readonly allowed: boolean
  /** Whole seconds until a call is allowed again (0 when allowed). */
  readonly retryAfterSeconds: number
}

export class RateLimiter extends Context.Service<RateLimiter, {
  /** Takes one call from `key`'s bucket of `perMinute` calls. */
  readonly take: (key: string, perMinute: number) => Effect.Effect<Decision>
}>()("vms/auth/RateLimiter") {}

/** The bucket a principal draws from, or none: the bootstrap key and setup mode are not limited. */
export const bucketOf = (principal: Principal): Option.Option<{ readonly key: string; readonly perMinute: number }> =>
  principal.kind === "bootstrap" || principal.kind === "setup"
    ? Option.none()
    : Option.some({
      key: `${principal.kind}:${principal.subject}`,
      perMinute: principal.rateLimitPerMinute ?? defaultPerMinute
    })

const allowed: Decision = { allowed: true, retryAfterSeconds: 0 }

export const layerMemory = Layer.sync(RateLimiter, () => {
  const buckets = new Map<string, { tokens: number; at: number }>()
  return RateLimiter.of({
    take: (key, perMinute) =>
      Effect.sync(() => {
        const now = Date.now()
        const perMs = perMinute / 60_000
        const bucket = buckets.get(key) ?? { tokens: perMinute, at: now }
        bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.at) * perMs)
        bucket.at = now
        buckets.set(key, bucket)
        if (bucket.tokens >= 1) {
          bucket.tokens -= 1
          return allowed
        }
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)) }
      })
  })
})

/**
 * KEYS[1] the bucket; ARGV: capacity, refill per ms, now (ms). Answers
 * { allowed (0/1), ms until one token }. The bucket expires when it would
 * be full again, so idle callers cost nothing.
 */
const takeScript = `
local capacity = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * perMs)
local ok = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) / perMs)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / perMs) + 1000)
return { ok, wait }
`

/** The Redis bucket store; `keyPrefix` separates clusters (and tests). */
export const makeRedis = (url: string, keyPrefix: string) =>
  Effect.gen(function*() {
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(url, { keyPrefix, lazyConnect: false, maxRetriesPerRequest: 2 })),
      (client) => Effect.promise(() => client.quit().catch(() => "OK"))
    )
    redis.defineCommand("vmsTakeToken", { numberOfKeys: 1, lua: takeScript })
    const take = (key: string, perMinute: number) =>
      Effect.tryPromise(() =>
        (redis as unknown as {
          vmsTakeToken: (key: string, capacity: number, perMs: number, now: number) => Promise<[number, number]>
        }).vmsTakeToken(`ratelimit:${key}`, perMinute, perMinute / 60_000, Date.now())
      ).pipe(
        Effect.map(([ok, waitMs]): Decision =>
          ok === 1 ? allowed : { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) }
        ),
        // Fail open: an unreachable Redis must not lock every client out.
        Effect.catch((error) => Effect.logWarning("rate limit check failed; allowing", String(error)).pipe(Effect.as(allowed)))
      )
    return RateLimiter.of({ take })
  })

/** Redis when `VMS_REDIS_URL` is set, in process otherwise. */
export const layer: Layer.Layer<RateLimiter, never, NodeConfig> = Layer.unwrap(
  Effect.map(NodeConfig, (config) =>
    Option.isSome(config.redisUrl)
      ? Layer.effect(RateLimiter, makeRedis(Redacted.value(config.redisUrl.value), `${config.cluster}:`))
      : layerMemory)
)
