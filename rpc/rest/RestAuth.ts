/**
 * Authentication and authorization of the REST API, as the `RestAuth`
 * middleware of every group but `auth`: credentials (`Authorization: Bearer`
 * access token or API key, `X-API-Key`, or setup mode on loopback) become
 * the request's `CurrentPrincipal`; the caller's rate limit applies (429
 * with `Retry-After`); the endpoint's permission is checked (403); and a
 * camera named in the path (`/cameras/{id}/…`) or the query (`cameraId`)
 * must be one the caller may see, else it does not exist for them (404).
 * Lists filter by agency in their handlers.
 */
import { Effect, ErrorReporter, Layer, Option, Schema } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiMiddleware } from "effect/http-api"
import { Authenticator, isLoopback } from "../../runtime/auth/Authenticator.ts"
import { can, canSeeCamera, CurrentPrincipal, type Permission } from "../../runtime/auth/Principal.ts"
import { bucketOf, RateLimiter } from "../../runtime/auth/RateLimiter.ts"
import { CameraStore } from "../../runtime/cameras/CameraStore.ts"
import { ApiMetrics } from "../../runtime/metrics/ApiMetrics.ts"
import { CameraNotFoundError, envelope, failWith, InternalError, RequestId } from "./CamerasApi.ts"

export class UnauthorizedError extends Schema.Error<UnauthorizedError>("vms/rest/Unauthorized")(
  envelope("Unauthorized"),
  { httpApiStatus: 401, description: "No credentials, or credentials that are not valid (expired, tampered, revoked)" }
) {
  static readonly code = "Unauthorized"
  override readonly [ErrorReporter.ignore] = true
}

export class ForbiddenError extends Schema.Error<ForbiddenError>("vms/rest/Forbidden")(
  envelope("Forbidden"),
  { httpApiStatus: 403, description: "The caller's role or agency does not allow this" }
) {
  static readonly code = "Forbidden"
  override readonly [ErrorReporter.ignore] = true
}

export class RateLimitedError extends Schema.Error<RateLimitedError>("vms/rest/RateLimited")(
  envelope("RateLimited"),
  { httpApiStatus: 429, description: "Too many requests; retry after the Retry-After header's seconds" }
) {
  static readonly code = "RateLimited"
  override readonly [ErrorReporter.ignore] = true
}

export class RestAuth extends HttpApiMiddleware.Service<RestAuth, {
  provides: CurrentPrincipal
  requires: RequestId
}>()("vms/rest/RestAuth", {
  error: [UnauthorizedError, ForbiddenError, RateLimitedError, CameraNotFoundError, InternalError]
}) {}

/** The permission each endpoint needs, by `group.endpoint`; reads need `camera:read`, other writes `camera:write`. */
const endpointPermissions: Readonly<Record<string, Permission>> = {
  "recordings.list": "recording:read",
  "recordings.timeline": "recording:read",
  "recordings.setRecording": "recording:write",
  "tokens.create": "token:manage",
  "tokens.list": "token:manage",
  "tokens.revoke": "token:manage",
  "users.create": "token:manage",
  "viewers.start": "media:live",
  "viewers.heartbeat": "media:live",
  "viewers.stop": "media:live",
  "agencies.create": "agency:manage",
  "agencies.update": "agency:manage"
}

const permissionFor = (group: string, endpoint: string, method: string): Permission =>
  endpointPermissions[`${group}.${endpoint}`] ?? (method === "GET" ? "camera:read" : "camera:write")

/** Groups whose `:id` path parameter is a camera id. */
const cameraPathGroups = new Set(["cameras", "recordings"])

export const layer: Layer.Layer<RestAuth, never, Authenticator | RateLimiter | CameraStore | ApiMetrics> = Layer.effect(
  RestAuth,
  Effect.gen(function*() {
    const authenticator = yield* Authenticator
    const limiter = yield* RateLimiter
    const store = yield* CameraStore
    const metrics = yield* ApiMetrics
    return RestAuth.of((httpEffect, { endpoint, group }) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const principal = yield* authenticator.authenticate({
          header: (name) => request.headers[name],
          loopback: isLoopback(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"])
        }).pipe(Effect.catchTag("AuthFailure", (failure) => failWith(UnauthorizedError, failure.message)))

        const bucket = bucketOf(principal)
        if (Option.isSome(bucket)) {
          const decision = yield* limiter.take(bucket.value.key, bucket.value.perMinute)
          if (!decision.allowed) {
            metrics.rateLimited.inc()
            yield* HttpEffect.appendPreResponseHandler((_request, response) =>
              Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(decision.retryAfterSeconds)))
            )
            return yield* failWith(
              RateLimitedError,
              `rate limit of ${bucket.value.perMinute} requests per minute exceeded; retry in ${decision.retryAfterSeconds} s`
            )
          }
        }

        const permission = permissionFor(group.identifier, endpoint.identifier, endpoint.method)
        if (!can(principal, permission)) {
          return yield* failWith(ForbiddenError, `role '${principal.role}' may not ${permission.replace(":", " ")}`)
        }

        const params = yield* HttpRouter.params
        const query = yield* HttpServerRequest.ParsedSearchParams
        const named = cameraPathGroups.has(group.identifier) && params.id !== undefined ? params.id : query.cameraId
        const cameraId = typeof named === "string" ? named : undefined
        if (cameraId !== undefined && principal.role !== "admin" || cameraId !== undefined && principal.cameraIds !== null) {
          const camera = yield* store.get(cameraId!).pipe(
            Effect.catchTag("CameraStoreFailure", (error) =>
              Effect.logError("camera lookup failed", error.message).pipe(
                Effect.andThen(failWith(InternalError, "internal error"))
              ))
          )
          if (Option.isSome(camera) && !canSeeCamera(principal, camera.value)) {
            return yield* failWith(CameraNotFoundError, `camera '${cameraId}' does not exist`)
          }
        }
        return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal)
      })
    )
  })
)
