/**
 * Access to recorded media routes that are registered by their own layers
 * (`PlaybackRoutes`, `ExportRoutes`): a route middleware, provided to those
 * layers, that lets a request through only when `MediaAccess.authorize`
 * grants it (credentials or setup mode with the permission and the camera
 * in the caller's agency, or a signed token for the camera's prefix),
 * counts it as a playback stream of the caller's agency (the camera's, for
 * a signed URL) under its `maxPlaybackStreams` (429 `QuotaExceeded` when
 * full; an export holds its slot while it is made), and records every
 * granted export in the audit log (who exported which camera and range).
 * Playback segments carry their own signed tokens and pass (their route
 * renews the playlist's stream).
 */
import { Effect, type Layer, Option } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { AuditLog } from "../audit/AuditLog.ts"
import type { Permission } from "../auth/Principal.ts"
import { CameraStore } from "../cameras/CameraStore.ts"
import { exportTtlMs, PlaybackStream, playbackTtlMs } from "../quota/PlaybackStreams.ts"
import { QuotaAdmissions } from "../quota/QuotaAdmissions.ts"
import { holderOf } from "../quota/ViewerSessions.ts"
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

const refuse = (status: number, code: string, message: string, details?: unknown) =>
  HttpServerResponse.jsonUnsafe({ error: details === undefined ? { code, message } : { code, message, details } }, {
    status,
    headers: { "cache-control": "no-store", "access-control-allow-origin": "*" }
  })

const guard = HttpRouter.middleware(
  Effect.gen(function*() {
    const services = yield* Effect.context<MediaAccess.RecordedServices | AuditLog>()
    const audit = yield* AuditLog
    const cameras = yield* CameraStore
    const admissions = yield* QuotaAdmissions
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
        // The grant was by credentials (it names the caller) or by a signed URL (no caller).
        const caller = grant.principal
        if (target.exporting) {
          if (caller !== undefined) {
            yield* audit.record(caller, {
              action: "export",
              targetType: "recording",
              targetId: target.cameraId,
              details: { from: url.searchParams.get("from"), to: url.searchParams.get("to") }
            })
          } else {
            yield* Effect.logInfo("export by signed URL").pipe(Effect.annotateLogs({ cameraId: target.cameraId }))
          }
        }

        // A playback stream of the caller's agency, or of the camera's for a signed URL.
        const agencyId = caller?.agencyId ?? Option.match(yield* cameras.get(target.cameraId).pipe(Effect.orElseSucceed(Option.none)), {
          onNone: () => undefined,
          onSome: (camera) => camera.agencyId
        })
        if (agencyId === undefined) return yield* httpEffect
        const stream = { id: randomUUID(), agencyId }
        const admitted = yield* Effect.result(admissions.admit(agencyId, {
          reservationId: stream.id,
          cameraId: target.cameraId,
          holder: caller === undefined ? "signed-url" : holderOf(caller),
          kind: "playback",
          ttlMs: target.exporting ? exportTtlMs : playbackTtlMs
        }))
        if (admitted._tag === "Failure") {
          const error = admitted.failure
          switch (error._tag) {
            case "QuotaExceeded":
              return refuse(429, "QuotaExceeded", error.message, {
                agencyId: error.agencyId,
                limit: error.limit,
                inUse: error.inUse,
                kind: error.kind
              })
            case "QuotaUnavailable":
              return refuse(503, "QuotaUnavailable", error.message)
            case "AgencyNotFound":
              return refuse(500, "InternalError", `agency '${error.agencyId}' does not exist`)
          }
        }
        return target.exporting
          ? yield* httpEffect.pipe(Effect.ensuring(admissions.release(agencyId, stream.id)))
          : yield* httpEffect.pipe(Effect.provideService(PlaybackStream, stream))
      })
  })
)

/** Provide to `PlaybackRoutes.layer` and `ExportRoutes.layer`. */
export const layer: Layer.Layer<never, never, MediaAccess.RecordedServices | AuditLog | QuotaAdmissions> = guard.layer
