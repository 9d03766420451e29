/**
 * Access to recorded media routes that are registered by their own layers
 * (`PlaybackRoutes`, `ExportRoutes`): a route middleware, provided to those
 * layers, that lets a request through only when `MediaAccess.authorize`
 * grants it (credentials or setup mode with the permission and the camera
 * in the caller's agency, or a signed token for the camera's prefix), and
 * records every granted export in the audit log (who exported which camera
 * and range). Playback segments carry their own signed tokens and pass.
 */
import { Effect, type Layer, Option } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import { AuditLog } from "../audit/AuditLog.ts"
import { Authenticator, isLoopback } from "../auth/Authenticator.ts"
import type { Permission } from "../auth/Principal.ts"
import * as MediaAccess from "./MediaAccess.ts"

const cameraIdPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

/** What a request under the guarded routes asks for: the camera, the prefix a token may open, the permission. */
export const classify = (pathname: string):
  | { readonly cameraId: string; readonly prefix: string; readonly permission: Permission; readonly exporting: boolean }
  | "segment"
  | undefined =>
{
  const playback = /^\/playback\/([^/]+)\/(.+)$/.exec(pathname)
  if (playback !== null) {
    if (playback[2]!.startsWith("segments/")) return "segment"
    const cameraId = decodeURIComponent(playback[1]!)
    return cameraIdPattern.test(cameraId)
      ? { cameraId, prefix: `/playback/${cameraId}/`, permission: "media:playback", exporting: false }
      : undefined
  }
  const exported = /^\/export\/([^/]+)\.mp4$/.exec(pathname)
  if (exported !== null) {
    const cameraId = decodeURIComponent(exported[1]!)
    return cameraIdPattern.test(cameraId)
      ? { cameraId, prefix: `/export/${cameraId}.mp4`, permission: "media:export", exporting: true }
      : undefined
  }
  return undefined
}

const guard = HttpRouter.middleware(
  Effect.gen(function*() {
    const services = yield* Effect.context<MediaAccess.RecordedServices | AuditLog>()
    const audit = yield* AuditLog
    const authenticator = yield* Authenticator
    return (httpEffect) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const url = new URL(request.url, "http://localhost")
        const target = classify(url.pathname)
        if (target === "segment" || target === undefined) return yield* httpEffect
        const grant = yield* MediaAccess.authorize(target.cameraId, target.prefix, target.permission).pipe(
          Effect.provideContext(services)
        )
        if (grant._tag === "Refused") return grant.response
        if (target.exporting) {
          // The grant was by credentials or a signed URL; the audit names the caller when there is one.
          const principal = yield* Effect.result(authenticator.authenticate({
            header: (name) => request.headers[name],
            loopback: isLoopback(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"])
          }))
          if (principal._tag === "Success") {
            yield* audit.record(principal.success, {
              action: "export",
              targetType: "recording",
              targetId: target.cameraId,
              details: { from: url.searchParams.get("from"), to: url.searchParams.get("to") }
            })
          } else {
            yield* Effect.logInfo("export by signed URL").pipe(Effect.annotateLogs({ cameraId: target.cameraId }))
          }
        }
        return yield* httpEffect
      })
  })
)

/** Provide to `PlaybackRoutes.layer` and `ExportRoutes.layer`. */
export const layer: Layer.Layer<never, never, MediaAccess.RecordedServices | AuditLog> = guard.layer
