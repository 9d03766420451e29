/**
 * The client RPC API, defined once: the `VmsRpcs` group that `/rpc` serves
 * with Effect's own serialization (typed client in `Client.ts`) and `/ws`
 * serves as JSON-RPC 2.0 (`JsonRpcProtocol.ts`). Method names are the
 * snake_case names of the public surface; payloads are objects with the same
 * camelCase fields as REST. `subscribe` streams the events a client may see,
 * led by one `subscribed` item (the JSON-RPC answer to the call); the other
 * items are the `camera_status_update`, `recording_status_update` and `alert`
 * notifications. Handlers live in `VmsHandlers.ts`.
 */
import { Schema } from "effect"
import { Rpc, RpcGroup, RpcMiddleware } from "effect/rpc"
import { CameraNotFound, CameraStatus, SnapshotUnavailable } from "../actors/CameraProtocol.ts"
import { CameraUnavailable } from "../runtime/cameras/CameraControl.ts"
import { bodyParseOptions, CameraCreate, CameraId, CameraView, isPrintable } from "../runtime/cameras/CameraModel.ts"
import { AgencyNotFound, CameraAlreadyExists } from "../runtime/cameras/CameraStore.ts"
import { Instant, RecordingView } from "../runtime/recording/RecordingModel.ts"
import { CurrentPrincipal } from "../runtime/auth/Principal.ts"
import { QuotaExceeded, QuotaUnavailable, SessionNotFound, SessionView } from "../runtime/quota/QuotaModel.ts"

export {
  AgencyNotFound,
  CameraAlreadyExists,
  CameraNotFound,
  CameraUnavailable,
  QuotaExceeded,
  QuotaUnavailable,
  SessionNotFound,
  SnapshotUnavailable
}

// ---------------------------------------------------------------------------
// Errors the API adds to the domain's

/** The node failed; the log has the details under `requestId`. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String,
  requestId: Schema.String
}) {}

/** No credentials, or credentials that are not valid (expired, tampered, revoked). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

/** Valid credentials whose role or agency does not allow the call. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}) {}

/** Params that decoded but do not make sense together (`to` before `from`); names the field. */
export class InvalidParams extends Schema.TaggedError<InvalidParams>()("InvalidParams", {
  field: Schema.String,
  message: Schema.String
}) {}

/** Too many calls; retry after `retryAfterSeconds`. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  message: Schema.String,
  retryAfterSeconds: Schema.Number
}) {}

/**
 * JSON-RPC error codes of the domain errors, in the range JSON-RPC 2.0 leaves
 * to servers (-32000 to -32099); `data` carries the error's tag and fields.
 */
export const domainErrorCodes: Readonly<Record<string, number>> = {
  Unauthorized: -32001,
  Forbidden: -32003,
  CameraNotFound: -32004,
  CameraAlreadyExists: -32009,
  AgencyNotFound: -32022,
  RateLimited: -32029,
  CameraUnavailable: -32050,
  SnapshotUnavailable: -32051,
  QuotaExceeded: -32042,
  SessionNotFound: -32044,
  QuotaUnavailable: -32053,
  InternalError: -32603,
  InvalidParams: -32602
}

/** Authentication and rate limiting of every call; provides the caller (implemented in `RpcAuth.ts`). */
export class RpcAuth extends RpcMiddleware.Service<RpcAuth, { provides: CurrentPrincipal }>()("vms/rpc/RpcAuth", {
  error: Schema.Union([Unauthorized, RateLimited])
}) {}

/** Every procedure may be refused before it runs. */
const accessErrors = [Unauthorized, Forbidden, RateLimited, InternalError] as const

// ---------------------------------------------------------------------------
// Payloads

const Text = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(256, { message: "must be at most 256 characters" }),
  isPrintable
)

const maxPageSize = 500
const pageSizeMessage = { message: `must be an integer from 1 to ${maxPageSize}` }
const PageSize = Schema.Number.check(
  Schema.isInt(pageSizeMessage),
  Schema.isBetween({ minimum: 1, maximum: maxPageSize }, pageSizeMessage)
)

const CameraRef = { cameraId: CameraId }

export const CameraPage = Schema.Struct({
  items: Schema.Array(CameraView),
  nextCursor: Schema.optionalKey(Schema.String)
})

export const RecordingPage = Schema.Struct({
  items: Schema.Array(RecordingView),
  nextCursor: Schema.optionalKey(Schema.String)
})

/** A snapshot as JSON: the JPEG base64-encoded. */
export const SnapshotView = Schema.Struct({
  cameraId: Schema.String,
  contentType: Schema.Literal("image/jpeg"),
  jpegBase64: Schema.String,
  width: Schema.Number,
  height: Schema.Number,
  takenAt: Schema.DateTimeUtc
})

/** A started viewer session: its live URL works while the session lives. */
export const ViewerGrant = Schema.Struct({
  ...SessionView.fields,
  /** `/live/{cameraId}/index.m3u8?token=…`, relative to the node; its fetches count as heartbeats. */
  liveUrl: Schema.String
})

const SessionRef = {
  sessionId: Schema.String.check(Schema.isMaxLength(64, { message: "must be at most 64 characters" }), isPrintable)
}

// ---------------------------------------------------------------------------
// Events

export const notificationNames = ["camera_status_update", "recording_status_update", "alert"] as const
export const NotificationName = Schema.Literals(notificationNames)
export type NotificationName = typeof NotificationName.Type

/** The first item of every subscription: the answer to the `subscribe` call. */
export const Subscribed = Schema.TaggedStruct("subscribed", {
  subscription: Schema.String,
  events: Schema.Array(NotificationName)
})

export const CameraStatusUpdate = Schema.TaggedStruct("camera_status_update", CameraStatus.fields)

export const RecordingStatusUpdate = Schema.TaggedStruct("recording_status_update", {
  cameraId: Schema.String,
  recording: Schema.Boolean,
  nodeId: Schema.String,
  at: Schema.DateTimeUtc
})

/** An operator alert. Node-wide alerts (storage) carry no camera and reach admins only. */
export const Alert = Schema.TaggedStruct("alert", {
  kind: Schema.String,
  message: Schema.String,
  nodeId: Schema.String,
  cameraId: Schema.NullOr(Schema.String),
  at: Schema.DateTimeUtc
})

export const SubscriptionItem = Schema.Union([Subscribed, CameraStatusUpdate, RecordingStatusUpdate, Alert])
export type SubscriptionItem = typeof SubscriptionItem.Type

export const SubscribeRequest = Schema.Struct({
  /** Only these cameras (each must be visible to the caller); all visible cameras when absent. */
  cameraIds: Schema.optionalKey(Schema.Array(CameraId).check(Schema.isMaxLength(1000))),
  /** Only these notifications; all three when absent. */
  events: Schema.optionalKey(Schema.Array(NotificationName))
})

// ---------------------------------------------------------------------------
// The group

export class VmsRpcs extends RpcGroup.make(
  Rpc.make("get_camera_list", {
    payload: {
      agencyId: Schema.optionalKey(Text),
      cursor: Schema.optionalKey(Text),
      limit: Schema.optionalKey(PageSize)
    },
    success: CameraPage,
    error: Schema.Union([...accessErrors])
  }),
  Rpc.make("get_camera_status", {
    payload: CameraRef,
    success: CameraStatus,
    error: Schema.Union([...accessErrors, CameraNotFound, CameraUnavailable])
  }),
  Rpc.make("add_camera", {
    payload: CameraCreate,
    success: CameraView,
    error: Schema.Union([...accessErrors, CameraAlreadyExists, AgencyNotFound])
  }),
  Rpc.make("remove_camera", {
    payload: CameraRef,
    success: Schema.Struct({ cameraId: Schema.String, removed: Schema.Literal(true) }),
    error: Schema.Union([...accessErrors, CameraNotFound])
  }),
  Rpc.make("take_snapshot", {
    payload: CameraRef,
    success: SnapshotView,
    error: Schema.Union([...accessErrors, CameraNotFound, CameraUnavailable, SnapshotUnavailable])
  }),
  Rpc.make("start_recording", {
    payload: CameraRef,
    success: CameraView,
    error: Schema.Union([...accessErrors, CameraNotFound, CameraUnavailable])
  }),
  Rpc.make("stop_recording", {
    payload: CameraRef,
    success: CameraView,
    error: Schema.Union([...accessErrors, CameraNotFound, CameraUnavailable])
  }),
  Rpc.make("list_recordings", {
    payload: {
      cameraId: CameraId,
      from: Instant,
      to: Instant,
      cursor: Schema.optionalKey(Text),
      limit: Schema.optionalKey(PageSize)
    },
    success: RecordingPage,
    error: Schema.Union([...accessErrors, CameraNotFound, InvalidParams])
  }),
  Rpc.make("start_viewing", {
    payload: CameraRef,
    success: ViewerGrant,
    error: Schema.Union([...accessErrors, CameraNotFound, QuotaExceeded, QuotaUnavailable])
  }),
  Rpc.make("heartbeat", {
    payload: SessionRef,
    success: SessionView,
    error: Schema.Union([...accessErrors, SessionNotFound, QuotaUnavailable])
  }),
  Rpc.make("stop_viewing", {
    payload: SessionRef,
    success: SessionView,
    error: Schema.Union([...accessErrors, SessionNotFound, QuotaUnavailable])
  }),
  Rpc.make("subscribe", {
    payload: SubscribeRequest,
    success: SubscriptionItem,
    error: Schema.Union([...accessErrors, CameraNotFound]),
    stream: true
  })
).middleware(RpcAuth).annotateRpcs(Rpc.ParseOptions, bodyParseOptions) {}

export type VmsRpc = RpcGroup.Rpcs<typeof VmsRpcs>
