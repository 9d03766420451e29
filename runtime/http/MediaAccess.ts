/**
 * Who may fetch a camera's media (`/live/…` now): a request with a signed
 * `?token=` for the camera's path prefix (from `/api/v1/cameras/{id}/live-url`,
 * bound to that camera, expiring), or one whose credentials (or setup mode)
 * name a principal with the permission who may see the camera. A tampered or
 * expired token is 403; no credentials 401; a camera the caller may not see
 * is 404, as if it did not exist.
 */
import { Effect, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { Authenticator, isLoopback } from "../auth/Authenticator.ts"
import { can, canSeeCamera, type Permission } from "../auth/Principal.ts"
import { CameraStore } from "../cameras/CameraStore.ts"
import { MediaToken } from "../recording/MediaToken.ts"

/** What `authorize` reads. */
export type Services = Authenticator | CameraStore | MediaToken

export type MediaGrant =
  | { readonly _tag: "Granted"; readonly token: string | undefined }
  | { readonly _tag: "Refused"; readonly response: HttpServerResponse.HttpServerResponse }

const refuse = (status: number, code: string, message: string): MediaGrant => ({
  _tag: "Refused",
  response: HttpServerResponse.jsonUnsafe({ error: { code, message } }, {
    status,
    headers: { "cache-control": "no-store", "access-control-allow-origin": "*" }
  })
})

/** Decides whether the current request may read media under `prefix` of `cameraId`. */
export const authorize = (cameraId: string, prefix: string, permission: Permission) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const signer = yield* MediaToken
    const token = new URL(request.url, "http://localhost").searchParams.get("token")
    if (token !== null) {
      const check = signer.verify(prefix, token, Date.now())
      if (check === "valid") return { _tag: "Granted", token } satisfies MediaGrant
      return refuse(403, "Forbidden", check === "expired" ? "token: has expired" : "token: is not valid for this camera")
    }
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
    return { _tag: "Granted", token: undefined } satisfies MediaGrant
  })

/** The playlist with `?token=` on every segment URI, so a player with a signed URL can follow it. */
export const withToken = (playlist: string, token: string | undefined) =>
  token === undefined
    ? playlist
    : playlist.split("\n").map((line) =>
      line === "" || line.startsWith("#") ? line : `${line}${line.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`
    ).join("\n")
