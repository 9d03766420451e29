/**
 * Who may fetch a camera's media.
 *
 * Live (`/live/…`, `authorizeLive`): a viewer session's signed URL (from
 * `start_viewing` / `POST /api/v1/viewers`), bound to the camera and the
 * session, and only while the session's quota reservation is held; each
 * such request renews it (a heartbeat). So the agency quota holds on the
 * media path itself. Admins (and setup mode) may also fetch live media with
 * their credentials, outside any quota; other roles need a session.
 *
 * Recorded (`authorize`): a signed `?token=` for the path prefix, or
 * credentials whose principal has the permission and may see the camera.
 *
 * A tampered or expired token, or an ended session, is 403; no credentials
 * 401; a camera the caller may not see is 404, as if it did not exist.
 */
import { Effect, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { Authenticator, isLoopback } from "../auth/Authenticator.ts"
import { can, canSeeCamera, type Permission, type Principal } from "../auth/Principal.ts"
import { CameraStore } from "../cameras/CameraStore.ts"
import { isSessionToken, MediaToken } from "../recording/MediaToken.ts"
import { ViewerSessions } from "../quota/ViewerSessions.ts"

/** What `authorize` reads (recorded media). */
export type RecordedServices = Authenticator | CameraStore | MediaToken

/** What `authorizeLive` reads too. */
export type Services = RecordedServices | ViewerSessions

export type MediaGrant =
  | {
    readonly _tag: "Granted"
    /** The signed token that granted it, if any. */
    readonly token: string | undefined
    /** The caller whose credentials granted it (none for a signed token). */
    readonly principal?: Principal | undefined
  }
  | { readonly _tag: "Refused"; readonly response: HttpServerResponse.HttpServerResponse }

const refuse = (status: number, code: string, message: string): MediaGrant => ({
  _tag: "Refused",
  response: HttpServerResponse.jsonUnsafe({ error: { code, message } }, {
    status,
    headers: { "cache-control": "no-store", "access-control-allow-origin": "*" }
  })
})

const tokenOf = (request: HttpServerRequest.HttpServerRequest) =>
  new URL(request.url, "http://localhost").searchParams.get("token")

const badToken = (check: "expired" | "invalid") =>
  refuse(403, "Forbidden", check === "expired" ? "token: has expired" : "token: is not valid for this camera")

/** Decides whether the current request may read recorded media under `prefix` of `cameraId`. */
export const authorize = (cameraId: string, prefix: string, permission: Permission) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const signer = yield* MediaToken
    const token = tokenOf(request)
    if (token !== null) {
      const check = signer.verify(prefix, token, Date.now())
      return check === "valid" ? { _tag: "Granted", token } satisfies MediaGrant : badToken(check)
    }
    return yield* withCredentials(request, cameraId, permission)
  })

/** Decides whether the current request may read `cameraId`'s live media (see the module's comment). */
export const authorizeLive = (cameraId: string) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const token = tokenOf(request)
    if (token !== null) {
      if (!isSessionToken(token)) return badToken("invalid")
      const sessions = yield* ViewerSessions
      const check = yield* sessions.touch(cameraId, token).pipe(
        Effect.catchTag("QuotaUnavailable", (error) =>
          Effect.logWarning("live request refused: quota store unavailable", error.message).pipe(Effect.as("unavailable" as const)))
      )
      switch (check) {
        case "valid":
          return { _tag: "Granted", token } satisfies MediaGrant
        case "ended":
          return refuse(403, "SessionEnded", "the viewer session has ended; start a new one (POST /api/v1/viewers)")
        case "unavailable":
          return refuse(503, "QuotaUnavailable", "the quota store did not answer; retry")
        default:
          return badToken(check)
      }
    }
    return yield* withCredentials(request, cameraId, "media:live", (principal) =>
      principal.role === "admin"
        ? undefined
        : refuse(403, "SessionRequired", "live media needs a viewer session: start_viewing, or POST /api/v1/viewers"))
  })

/**
 * A request with credentials (or setup mode): the principal's permission and
 * its view of the camera decide, then `also` may still refuse.
 */
const withCredentials = (
  request: HttpServerRequest.HttpServerRequest,
  cameraId: string,
  permission: Permission,
  also: (principal: Principal) => MediaGrant | undefined = () => undefined
) =>
  Effect.gen(function*() {
    const authenticator = yield* Authenticator
    const result = yield* Effect.result(authenticator.authenticate({
      header: (name) => request.headers[name],
      loopback: isLoopback(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"])
    }))
    if (result._tag === "Failure") return refuse(401, "Unauthorized", result.failure.message)
    const principal = result.success
    if (!can(principal, permission)) return refuse(403, "Forbidden", `role '${principal.role}' may not read this media`)
    if (principal.role !== "admin" || principal.cameraIds !== null) {
      const store = yield* CameraStore
      const camera = yield* Effect.orElseSucceed(store.get(cameraId), () => Option.none())
      if (Option.isNone(camera) || !canSeeCamera(principal, camera.value)) {
        return refuse(404, "NotFound", "no such camera")
      }
    }
    return also(principal) ?? { _tag: "Granted", token: undefined, principal } satisfies MediaGrant
  })

/** The playlist with `?token=` on every segment URI, so a player with a signed URL can follow it. */
export const withToken = (playlist: string, token: string | undefined) =>
  token === undefined
    ? playlist
    : playlist.split("\n").map((line) =>
      line === "" || line.startsWith("#") ? line : `${line}${line.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`
    ).join("\n")
