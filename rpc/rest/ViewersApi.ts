/**
 * The REST contract for viewer sessions (`/api/v1/viewers`: start one for a
 * camera and get its signed live URL, heartbeat, stop) and for agencies and
 * their stream limits (`/api/v1/agencies`: admins manage them; others read
 * their own). A refused stream is 429 `QuotaExceeded` with the agency, the
 * limit and what is in use in `details`. Handlers live in `ViewersHandlers.ts`.
 */
import { ErrorReporter, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { CameraId, isPrintable } from "../../runtime/cameras/CameraModel.ts"
import { SessionView } from "../../runtime/quota/QuotaModel.ts"
import { CameraNotFoundError, envelope } from "./CamerasApi.ts"

export class QuotaExceededError extends Schema.Error<QuotaExceededError>("vms/rest/QuotaExceeded")(
  envelope("QuotaExceeded"),
  {
    httpApiStatus: 429,
    description: "The agency (or the camera) is at its stream limit; `details` has agencyId, limit, inUse and kind"
  }
) {
  static readonly code = "QuotaExceeded"
  override readonly [ErrorReporter.ignore] = true
}

export class SessionNotFoundError extends Schema.Error<SessionNotFoundError>("vms/rest/SessionNotFound")(
  envelope("SessionNotFound"),
  { httpApiStatus: 404, description: "No live viewer session of yours has this id (stopped, or expired without heartbeats)" }
) {
  static readonly code = "SessionNotFound"
  override readonly [ErrorReporter.ignore] = true
}

export class QuotaUnavailableError extends Schema.Error<QuotaUnavailableError>("vms/rest/QuotaUnavailable")(
  envelope("QuotaUnavailable"),
  { httpApiStatus: 503, description: "The quota store or actor did not answer; nothing was admitted; retry" }
) {
  static readonly code = "QuotaUnavailable"
}

export class AgencyMissingError extends Schema.Error<AgencyMissingError>("vms/rest/AgencyNotFound")(
  envelope("AgencyNotFound"),
  { httpApiStatus: 404, description: "No agency has this id" }
) {
  static readonly code = "AgencyNotFound"
  override readonly [ErrorReporter.ignore] = true
}

export class AgencyConflictError extends Schema.Error<AgencyConflictError>("vms/rest/AgencyConflict")(
  envelope("AgencyConflict"),
  { httpApiStatus: 409, description: "An agency with this id or name exists" }
) {
  static readonly code = "AgencyConflict"
  override readonly [ErrorReporter.ignore] = true
}

// ---------------------------------------------------------------------------
// Viewers

export const ViewerStart = Schema.Struct({ cameraId: CameraId }).annotate({ identifier: "ViewerStart" })

export const ViewerGrant = Schema.Struct({
  ...SessionView.fields,
  /** `/live/{cameraId}/index.m3u8?token=…`: works while the session lives; its fetches count as heartbeats. */
  liveUrl: Schema.String
}).annotate({ identifier: "ViewerGrant" })

const SessionId = Schema.String.check(
  Schema.isMaxLength(64, { message: "must be at most 64 characters" }),
  isPrintable
)

export class ViewersApi extends HttpApiGroup.make("viewers")
  .add(
    HttpApiEndpoint.post("start", "/viewers", {
      payload: ViewerStart,
      success: ViewerGrant.pipe(HttpApiSchema.status(201)),
      error: [CameraNotFoundError, QuotaExceededError, QuotaUnavailableError]
    }).annotate(
      OpenApi.Description,
      "Starts a live viewer session if the agency's quota admits it; heartbeat within `timeoutSeconds` to keep it"
    ),
    HttpApiEndpoint.post("heartbeat", "/viewers/:id/heartbeat", {
      params: { id: SessionId },
      success: SessionView.annotate({ identifier: "ViewerSession" }),
      error: [SessionNotFoundError, QuotaUnavailableError]
    }),
    HttpApiEndpoint.delete("stop", "/viewers/:id", {
      params: { id: SessionId },
      success: SessionView.annotate({ identifier: "ViewerSession" }),
      error: [SessionNotFoundError, QuotaUnavailableError]
    }).annotate(OpenApi.Description, "Ends the session and frees its slot at once")
  )
  .annotate(OpenApi.Description, "Live viewer sessions under agency quotas")
{}

// ---------------------------------------------------------------------------
// Agencies

const AgencyId = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
    message: "must be 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
  })
)

const AgencyName = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(200, { message: "must be at most 200 characters" }),
  isPrintable
)

const Limit = (what: string) =>
  Schema.Number.check(
    Schema.isInt({ message: `must be a whole number of ${what}` }),
    Schema.isBetween({ minimum: 0, maximum: 1_000_000 }, { message: "must be from 0 to 1000000" })
  )

export const AgencyCreate = Schema.Struct({
  /** Derived from the name when absent. */
  id: Schema.optionalKey(AgencyId),
  name: AgencyName,
  maxLiveStreams: Limit("streams"),
  maxViewersPerCamera: Schema.optionalKey(Schema.NullOr(Limit("viewers"))),
  maxPlaybackStreams: Schema.optionalKey(Schema.NullOr(Limit("streams")))
}).annotate({ identifier: "AgencyCreate" })

export const AgencyUpdate = Schema.Struct({
  name: Schema.optionalKey(AgencyName),
  maxLiveStreams: Schema.optionalKey(Limit("streams")),
  maxViewersPerCamera: Schema.optionalKey(Schema.NullOr(Limit("viewers"))),
  maxPlaybackStreams: Schema.optionalKey(Schema.NullOr(Limit("streams")))
}).annotate({ identifier: "AgencyUpdate" })

export const AgencyView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  maxLiveStreams: Schema.Number,
  /** Null: not limited. */
  maxViewersPerCamera: Schema.NullOr(Schema.Number),
  /** Playback and export streams, counted apart from live; null: not limited. */
  maxPlaybackStreams: Schema.NullOr(Schema.Number),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  /** Streams in use now (on the single-agency reads). */
  inUse: Schema.optionalKey(Schema.Struct({ live: Schema.Number, playback: Schema.Number }))
}).annotate({ identifier: "Agency" })

const agencyPath = { id: Schema.String.check(Schema.isMaxLength(63), isPrintable) }

export class AgenciesApi extends HttpApiGroup.make("agencies")
  .add(
    HttpApiEndpoint.get("list", "/agencies", {
      success: Schema.Struct({ items: Schema.Array(AgencyView) }).annotate({ identifier: "AgencyList" })
    }).annotate(OpenApi.Description, "Every agency (admins); your own agency (others)"),
    HttpApiEndpoint.get("get", "/agencies/:id", {
      params: agencyPath,
      success: AgencyView,
      error: [AgencyMissingError, QuotaUnavailableError]
    }).annotate(OpenApi.Description, "The agency with its streams in use"),
    HttpApiEndpoint.post("create", "/agencies", {
      payload: AgencyCreate,
      success: AgencyView.pipe(HttpApiSchema.status(201)),
      error: AgencyConflictError
    }),
    HttpApiEndpoint.patch("update", "/agencies/:id", {
      params: agencyPath,
      payload: AgencyUpdate,
      success: AgencyView,
      error: [AgencyMissingError, AgencyConflictError]
    }).annotate(OpenApi.Description, "Changes take effect at the next admission; sessions already admitted keep their slots")
  )
  .annotate(OpenApi.Description, "Agencies and their stream limits (changes: admins)")
{}
