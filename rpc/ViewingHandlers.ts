/**
 * The viewing procedures of `VmsRpcs` (`start_viewing`, `heartbeat`,
 * `stop_viewing`), on `ViewerSessions`, the same path as REST's
 * `/api/v1/viewers`. A refusal is the typed `QuotaExceeded`; the caller
 * needs `media:live` and must see the camera.
 */
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { requirePermission } from "../runtime/auth/Principal.ts"
import { ViewerSessions } from "../runtime/quota/ViewerSessions.ts"
import { Forbidden, InternalError } from "./VmsRpcs.ts"

const internal = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    const requestId = randomUUID()
    yield* Effect.logError("rpc request failed", error.message).pipe(Effect.annotateLogs({ requestId }))
    return yield* new InternalError({ message: `internal error (request ${requestId})`, requestId })
  })

const requireLive = requirePermission("media:live", (message) => new Forbidden({ message }))

export const make = Effect.gen(function*() {
  const sessions = yield* ViewerSessions
  return {
    start_viewing: Effect.fn("VmsRpcs.start_viewing")(function*({ cameraId }: { readonly cameraId: string }) {
      const principal = yield* requireLive
      const grant = yield* sessions.start(principal, cameraId).pipe(
        Effect.catchTags({
          CameraStoreFailure: internal,
          AgencyNotFound: (error) => internal({ message: `the caller's agency '${error.agencyId}' does not exist` })
        })
      )
      return { ...grant.session, liveUrl: grant.liveUrl }
    }),
    heartbeat: Effect.fn("VmsRpcs.heartbeat")(function*({ sessionId }: { readonly sessionId: string }) {
      return yield* sessions.heartbeat(yield* requireLive, sessionId)
    }),
    stop_viewing: Effect.fn("VmsRpcs.stop_viewing")(function*({ sessionId }: { readonly sessionId: string }) {
      return yield* sessions.stop(yield* requireLive, sessionId)
    })
  }
})
