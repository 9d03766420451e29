/**
 * The RPC server middleware every call of `VmsRpcs` passes (typed `/rpc` and
 * JSON-RPC `/ws` alike): authenticates the connection's credentials (the
 * upgrade request's headers, or a JSON-RPC `authenticate` call), applies the
 * caller's rate limit, provides `CurrentPrincipal` to the handler, and
 * records `vms_rpc_duration_seconds` and `vms_rpc_errors_total`.
 *
 * Loopback: the transports add `x-vms-loopback` with this process's
 * `loopbackProof` when the peer is on loopback (and drop a client's own), so
 * setup mode can tell without trusting a header a client could set.
 */
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { randomBytes } from "node:crypto"
import { Authenticator } from "../runtime/auth/Authenticator.ts"
import { CurrentPrincipal, type Principal } from "../runtime/auth/Principal.ts"
import { bucketOf, RateLimiter } from "../runtime/auth/RateLimiter.ts"
import { ApiMetrics } from "../runtime/metrics/ApiMetrics.ts"
import { RateLimited, RpcAuth, Unauthorized } from "./VmsRpcs.ts"

export const loopbackProof = randomBytes(24).toString("base64url")
export const loopbackHeader = "x-vms-loopback"

const errorCode = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const value = error.value
    return typeof value === "object" && value !== null && "_tag" in value ? String(value._tag) : "Error"
  }
  return Cause.hasInterruptsOnly(cause) ? "Interrupted" : "Defect"
}

export const layer: Layer.Layer<RpcAuth, never, Authenticator | RateLimiter | ApiMetrics> = Layer.effect(
  RpcAuth,
  Effect.gen(function*() {
    const authenticator = yield* Authenticator
    const limiter = yield* RateLimiter
    const metrics = yield* ApiMetrics
    // Principals are cached by the authenticator, so their buckets are worked out once each.
    const buckets = new WeakMap<Principal, Option.Option<{ readonly key: string; readonly perMinute: number }>>()
    const bucketFor = (principal: Principal) => {
      let bucket = buckets.get(principal)
      if (bucket === undefined) buckets.set(principal, bucket = bucketOf(principal))
      return bucket
    }
    return RpcAuth.of((effect, { headers, rpc }) => {
      const method = rpc._tag
      const started = performance.now()
      const call = authenticator.authenticate({
        header: (name) => headers[name],
        loopback: headers[loopbackHeader] === loopbackProof
      }).pipe(
        Effect.mapError((failure) => new Unauthorized({ message: failure.message })),
        Effect.flatMap((principal) => {
          const run = Effect.provideService(effect, CurrentPrincipal, principal)
          const bucket = bucketFor(principal)
          if (Option.isNone(bucket)) return run
          return Effect.flatMap(limiter.take(bucket.value.key, bucket.value.perMinute), (decision) => {
            if (decision.allowed) return run
            metrics.rateLimited.inc()
            return Effect.fail(
              new RateLimited({
                message: `rate limit of ${bucket.value.perMinute} calls per minute exceeded`,
                retryAfterSeconds: decision.retryAfterSeconds
              })
            )
          })
        })
      )
      if (method === "subscribe") return call
      return call.pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            metrics.rpcDuration.observe({ method }, (performance.now() - started) / 1000)
            if (Exit.isFailure(exit)) metrics.rpcErrors.inc({ method, code: errorCode(exit.cause) })
          })
        )
      )
    })
  })
)
