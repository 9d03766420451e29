/**
 * The client API as the node mounts it: `/rpc` and `/ws` with their
 * handlers and middleware, and the REST docs page `/api/v1/docs` (`layer`), and the authentication services that
 * the RPC and REST routes share (`authServices`: credentials in Postgres,
 * the signing secret, the authenticator, the rate limiter, the API metrics,
 * the audit log).
 */
import { Effect, Layer } from "effect"
import { AuditLog } from "../runtime/audit/AuditLog.ts"
import { ApiMetrics } from "../runtime/metrics/ApiMetrics.ts"
import { Authenticator } from "../runtime/auth/Authenticator.ts"
import { CameraStatusView } from "../runtime/cameras/CameraStatusView.ts"
import * as CredentialStore from "../runtime/auth/CredentialStore.ts"
import * as RateLimiter from "../runtime/auth/RateLimiter.ts"
import { SigningSecret } from "../runtime/auth/SigningSecret.ts"
import { EventSubscriptions } from "./EventSubscriptions.ts"
import { JsonRpcSinks } from "./JsonRpcSinks.ts"
import * as ApiDocs from "./rest/ApiDocs.ts"
import * as RpcAuth from "./RpcAuth.ts"
import * as RpcRoutes from "./RpcRoutes.ts"
import * as VmsHandlers from "./VmsHandlers.ts"

/** Counts authentication failures in `vms_auth_failures_total`. */
const countFailures = Layer.effectDiscard(
  Effect.gen(function*() {
    const authenticator = yield* Authenticator
    const metrics = yield* ApiMetrics
    authenticator.onFailure((reason) => metrics.authFailures.inc({ reason }))
  })
)

export const authServices = countFailures.pipe(
  Layer.provideMerge(Layer.mergeAll(Authenticator.layer, RateLimiter.layer, ApiMetrics.layer)),
  Layer.provideMerge(Layer.mergeAll(CredentialStore.layer, SigningSecret.layer, AuditLog.layer))
)

export const layer = Layer.mergeAll(
  RpcRoutes.layer.pipe(Layer.provide(Layer.mergeAll(VmsHandlers.layer, RpcAuth.layer))),
  ApiDocs.layer
).pipe(Layer.provide(Layer.mergeAll(EventSubscriptions.layer, JsonRpcSinks.layer, CameraStatusView.layer)))
