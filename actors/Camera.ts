/**
 * The Camera actor: one effect/cluster entity per camera id, living on the
 * node that owns the camera's shard. It owns the camera's state machine
 * (`disabled | offline | connecting | online | error`) and answers its
 * status. This first version reads the camera's registration from Postgres;
 * the ingest pipeline that moves it past `offline` is added on top of it.
 */
import { DateTime, Effect, Option, Schema } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { NodeId } from "../runtime/config/NodeId.ts"

// ---------------------------------------------------------------------------
// Protocol

export const CameraState = Schema.Literals(["disabled", "offline", "connecting", "online", "error"])
export type CameraState = typeof CameraState.Type

export class CameraStatus extends Schema.Class<CameraStatus>("CameraStatus")({
  cameraId: Schema.String,
  status: CameraState,
  reason: Schema.NullOr(Schema.String),
  fps: Schema.Number,
  bitrate: Schema.Number,
  nodeId: Schema.String,
  updatedAt: Schema.DateTimeUtc
}) {}

export class CameraNotFound extends Schema.TaggedError<CameraNotFound>()("CameraNotFound", {
  cameraId: Schema.String
}) {}

export class CameraStoreError extends Schema.TaggedError<CameraStoreError>()("CameraStoreError", {
  cameraId: Schema.String,
  message: Schema.String
}) {}

export const GetStatus = Rpc.make("GetStatus", {
  success: CameraStatus,
  error: Schema.Union([CameraNotFound, CameraStoreError])
})

// ---------------------------------------------------------------------------
// Entity

export const Camera = Entity.make("Camera", [GetStatus])

// ---------------------------------------------------------------------------
// State and handlers

const Registration = Schema.Struct({ enabled: Schema.Boolean })

export const CameraLayer = Camera.toLayer(
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const cameraId = address.entityId
    const nodeId = yield* NodeId
    const sql = yield* SqlClient.SqlClient

    const readRegistration = Effect.gen(function*() {
      const rows = yield* sql`SELECT enabled FROM cameras WHERE id = ${cameraId}`
      const row = rows[0]
      if (row === undefined) return Option.none()
      return Option.some(yield* Schema.decodeUnknownEffect(Registration)(row))
    }).pipe(
      Effect.mapError((error) => new CameraStoreError({ cameraId, message: error.message }))
    )

    let status = new CameraStatus({
      cameraId,
      status: "offline",
      reason: null,
      fps: 0,
      bitrate: 0,
      nodeId,
      updatedAt: yield* DateTime.now
    })

    const transition = Effect.fnUntraced(function*(next: CameraState, reason: string | null) {
      if (status.status === next && status.reason === reason) return status
      status = new CameraStatus({ ...status, status: next, reason, updatedAt: yield* DateTime.now })
      yield* Effect.logInfo("camera status changed").pipe(Effect.annotateLogs({ status: next, reason }))
      return status
    })

    yield* Effect.logDebug("camera actor started")

    return Camera.of({
      GetStatus: () =>
        Effect.gen(function*() {
          const registration = yield* readRegistration
          if (Option.isNone(registration)) return yield* new CameraNotFound({ cameraId })
          return registration.value.enabled
            ? yield* transition("offline", "ingest is not running on this node")
            : yield* transition("disabled", null)
        }).pipe(Effect.annotateLogs({ actor: "Camera", cameraId }))
    })
  }).pipe(Effect.annotateLogs({ actor: "Camera" }))
)
