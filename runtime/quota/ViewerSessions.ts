/**
 * Viewer sessions as the APIs use them (RPC, JSON-RPC and REST answer from
 * here, so they agree): starting one for a camera the caller may see, with
 * a signed live URL bound to the camera and the session; heartbeats; stop;
 * and the media path's check (`touch`), which accepts a live request only
 * while the session's reservation is held and counts the request as a
 * heartbeat. Each session is a `ViewerSession` actor; its admission is the
 * agency's `AgencyQuota` actor's decision.
 */
import { Context, DateTime, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { ViewerSession, type SessionState } from "../../actors/ViewerSession.ts"
import { quotaTransport } from "./QuotaAdmissions.ts"
import { CameraNotFound } from "../../actors/CameraProtocol.ts"
import { canSeeCamera, type Principal } from "../auth/Principal.ts"
import { CameraStore, type CameraStoreFailure } from "../cameras/CameraStore.ts"
import type { AgencyNotFound } from "../cameras/CameraStore.ts"
import { MediaToken, type TokenCheck } from "../recording/MediaToken.ts"
import {
  type QuotaExceeded,
  QuotaUnavailable,
  SessionNotFound,
  type SessionView,
  viewerTimeoutSeconds
} from "./QuotaModel.ts"
import { ReservationStore } from "./ReservationStore.ts"

/** How long a live URL's token is valid; the session's heartbeats decide how long it opens anything. */
export const liveUrlHours = 24

/** The path prefix a live token opens: the camera's playlist and its segments. */
export const livePrefix = (cameraId: string) => `/live/${cameraId}/`

export interface ViewerGrant {
  readonly session: SessionView
  /** `/live/{cameraId}/index.m3u8?token=…`, relative to the node. */
  readonly liveUrl: string
}

/** What the media path decided about a live request's session token. */
export type SessionCheck = TokenCheck | "ended"

/** The reservation holder a principal is: only they (or an admin) may renew or stop the session. */
export const holderOf = (principal: Principal) => `${principal.kind}:${principal.subject}`

export class ViewerSessions extends Context.Service<ViewerSessions, {
  readonly start: (
    principal: Principal,
    cameraId: string
  ) => Effect.Effect<ViewerGrant, CameraNotFound | QuotaExceeded | QuotaUnavailable | AgencyNotFound | CameraStoreFailure>
  readonly heartbeat: (principal: Principal, sessionId: string) => Effect.Effect<SessionView, SessionNotFound | QuotaUnavailable>
  readonly stop: (principal: Principal, sessionId: string) => Effect.Effect<SessionView, SessionNotFound | QuotaUnavailable>
  /** A live request for `cameraId` with session token `token`: valid renews the session. */
  readonly touch: (cameraId: string, token: string) => Effect.Effect<SessionCheck, QuotaUnavailable>
}>()("vms/runtime/quota/ViewerSessions") {
  static readonly layer = Layer.effect(
    ViewerSessions,
    Effect.gen(function*() {
      const clientFor = yield* ViewerSession.client
      const cameras = yield* CameraStore
      const signer = yield* MediaToken
      const store = yield* ReservationStore
      const ttlMs = viewerTimeoutSeconds * 1000

      const view = (state: SessionState): SessionView => ({
        sessionId: state.sessionId,
        cameraId: state.cameraId,
        agencyId: state.agencyId,
        expiresAt: DateTime.makeUnsafe(state.expiresAtMs),
        timeoutSeconds: viewerTimeoutSeconds
      })
      const adminOrHolder = (principal: Principal) => principal.role === "admin" ? null : holderOf(principal)
      /** Session ids are server-made UUIDs; anything else names no session (and no entity is woken for it). */
      const checked = (sessionId: string): Effect.Effect<string, SessionNotFound> =>
        /^[0-9a-f-]{36}$/.test(sessionId) ? Effect.succeed(sessionId) : Effect.fail(new SessionNotFound({ sessionId }))

      return ViewerSessions.of({
        start: Effect.fn("ViewerSessions.start")(function*(principal, cameraId) {
          const camera = yield* cameras.get(cameraId)
          if (Option.isNone(camera) || !canSeeCamera(principal, camera.value)) return yield* new CameraNotFound({ cameraId })
          const sessionId = randomUUID()
          const state = yield* clientFor(sessionId).Start({
            cameraId,
            agencyId: principal.agencyId,
            holder: holderOf(principal),
            ttlMs
          }).pipe(
            quotaTransport,
            Effect.catchTag("SessionNotFound", () => Effect.fail(new QuotaUnavailable({ message: "session id collision" })))
          )
          const token = signer.signSession(livePrefix(cameraId), sessionId, Date.now() + liveUrlHours * 3_600_000)
          return { session: view(state), liveUrl: `${livePrefix(cameraId)}index.m3u8?token=${token}` }
        }),
        heartbeat: (principal, sessionId) =>
          checked(sessionId).pipe(
            Effect.flatMap((id) => clientFor(id).Heartbeat({ holder: adminOrHolder(principal), ttlMs }).pipe(quotaTransport)),
            Effect.map(view)
          ),
        stop: (principal, sessionId) =>
          checked(sessionId).pipe(
            Effect.flatMap((id) => clientFor(id).Stop({ holder: adminOrHolder(principal) }).pipe(quotaTransport)),
            Effect.map(view)
          ),
        touch: (cameraId, token) => {
          const { check, sessionId } = signer.verifySession(livePrefix(cameraId), token, Date.now())
          if (check !== "valid" || sessionId === undefined) return Effect.succeed(check)
          return store.renew(sessionId, ttlMs).pipe(
            Effect.map((renewed) => Option.isSome(renewed) && renewed.value.cameraId === cameraId ? "valid" : "ended")
          )
        }
      })
    })
  )
}
