/**
 * The REST contract for cameras (`/api/v1/cameras…`): endpoints, their
 * schemas, statuses and typed errors. Also the error envelope every REST
 * response shares, `{ "error": { code, message, details?, requestId } }`,
 * and the `RestBoundary` middleware tag that gives each request its id,
 * limits its body and turns decoding failures into that envelope (its
 * implementation is in `RestApi.ts`). Handlers live in `CamerasHandlers.ts`.
 */
import { Context, Effect, ErrorReporter, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import { CameraStatus } from "../../actors/CameraProtocol.ts"
import { CameraCreate, CameraUpdate, CameraView, isPrintable } from "../../runtime/cameras/CameraModel.ts"

// ---------------------------------------------------------------------------
// Error envelope (shared by every REST group)

/** The id of the request being served: in every error body and the `X-Request-Id` header. */
export class RequestId extends Context.Service<RequestId, string>()("vms/rest/RequestId") {}

export const envelope = <const Code extends string>(code: Code) => ({
  error: Schema.Struct({
    code: Schema.Literal(code),
    /** Names the offending field or id, e.g. `url: must be an rtsp:// or rtsps:// URL with a host`. */
    message: Schema.String,
    details: Schema.optionalKey(Schema.Unknown),
    requestId: Schema.String
  })
})

// Client mistakes (4xx) are not reported to error reporters; the node's own failures are.

/** A request that failed decoding (path, query or body), or a body that is not JSON. */
export class InvalidRequestError extends Schema.Error<InvalidRequestError>("vms/rest/InvalidRequest")(
  envelope("InvalidRequest"),
  { httpApiStatus: 400, description: "The request is invalid; the message names the field" }
) {
  static readonly code = "InvalidRequest"
  override readonly [ErrorReporter.ignore] = true
}

export class PayloadTooLargeError extends Schema.Error<PayloadTooLargeError>("vms/rest/PayloadTooLarge")(
  envelope("PayloadTooLarge"),
  { httpApiStatus: 413, description: "The request body is larger than 64 KiB" }
) {
  static readonly code = "PayloadTooLarge"
  override readonly [ErrorReporter.ignore] = true
}

export class InternalError extends Schema.Error<InternalError>("vms/rest/InternalError")(
  envelope("InternalError"),
  { httpApiStatus: 500, description: "The node failed; the request id finds it in the log" }
) {
  static readonly code = "InternalError"
}

export class CameraNotFoundError extends Schema.Error<CameraNotFoundError>("vms/rest/CameraNotFound")(
  envelope("CameraNotFound"),
  { httpApiStatus: 404, description: "No camera has this id" }
) {
  static readonly code = "CameraNotFound"
  override readonly [ErrorReporter.ignore] = true
}

export class CameraAlreadyExistsError extends Schema.Error<CameraAlreadyExistsError>("vms/rest/CameraAlreadyExists")(
  envelope("CameraAlreadyExists"),
  { httpApiStatus: 409, description: "A camera with this id exists" }
) {
  static readonly code = "CameraAlreadyExists"
  override readonly [ErrorReporter.ignore] = true
}

export class AgencyNotFoundError extends Schema.Error<AgencyNotFoundError>("vms/rest/AgencyNotFound")(
  envelope("AgencyNotFound"),
  { httpApiStatus: 422, description: "The agencyId names no agency" }
) {
  static readonly code = "AgencyNotFound"
  override readonly [ErrorReporter.ignore] = true
}

export class CameraUnavailableError extends Schema.Error<CameraUnavailableError>("vms/rest/CameraUnavailable")(
  envelope("CameraUnavailable"),
  { httpApiStatus: 503, description: "The camera's actor did not answer in time; retry" }
) {
  static readonly code = "CameraUnavailable"
}

export class SnapshotUnavailableError extends Schema.Error<SnapshotUnavailableError>("vms/rest/SnapshotUnavailable")(
  envelope("SnapshotUnavailable"),
  { httpApiStatus: 503, description: "No live picture to take a snapshot from (offline or connecting)" }
) {
  static readonly code = "SnapshotUnavailable"
}

type ErrorClass<Code extends string, E> = {
  readonly code: Code
  new(props: {
    readonly error: {
      readonly code: Code
      readonly message: string
      readonly details?: unknown
      readonly requestId: string
    }
  }): E
}

/** Fails with the envelope error `errorClass`, stamped with the current request's id. */
export const failWith = <Code extends string, E>(
  errorClass: ErrorClass<Code, E>,
  message: string,
  details?: unknown
): Effect.Effect<never, E, RequestId> =>
  Effect.gen(function*() {
    const requestId = yield* RequestId
    return yield* Effect.fail(
      new errorClass({
        error: details === undefined
          ? { code: errorClass.code, message, requestId }
          : { code: errorClass.code, message, details, requestId }
      })
    )
  })

/**
 * Applied to the whole API: a request id per request, the body limit, and
 * the envelope for decoding failures and defects.
 */
export class RestBoundary extends HttpApiMiddleware.Service<RestBoundary, { provides: RequestId }>()(
  "vms/rest/RestBoundary",
  { error: [InvalidRequestError, PayloadTooLargeError, InternalError] }
) {}

// ---------------------------------------------------------------------------
// Cameras

export const CameraPage = Schema.Struct({
  items: Schema.Array(CameraView),
  /** Present when more cameras follow: pass it back as `cursor`. */
  nextCursor: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "CameraPage" })

export const maxPageSize = 500
export const defaultPageSize = 100

const pageSizeMessage = { message: `must be an integer from 1 to ${maxPageSize}` }
const PageSize = Schema.Number.check(
  Schema.isInt(pageSizeMessage),
  Schema.isBetween({ minimum: 1, maximum: maxPageSize }, pageSizeMessage)
)

/** Ids, cursors and agency ids in URLs: anything Postgres text can hold, within reason. */
const UrlText = Schema.String.check(
  Schema.isMaxLength(256, { message: "must be at most 256 characters" }),
  isPrintable
)

const cameraPath = { id: UrlText }

const Jpeg = Schema.Uint8Array.pipe(HttpApiSchema.asUint8Array({ contentType: "image/jpeg" }))

export class CamerasApi extends HttpApiGroup.make("cameras")
  .add(
    HttpApiEndpoint.get("list", "/cameras", {
      query: {
        agencyId: Schema.optionalKey(UrlText),
        cursor: Schema.optionalKey(UrlText),
        limit: Schema.optionalKey(PageSize)
      },
      success: CameraPage
    }),
    HttpApiEndpoint.get("get", "/cameras/:id", {
      params: cameraPath,
      success: CameraView,
      error: CameraNotFoundError
    }),
    HttpApiEndpoint.post("create", "/cameras", {
      payload: CameraCreate,
      success: CameraView.pipe(HttpApiSchema.status(201)),
      error: [CameraAlreadyExistsError, AgencyNotFoundError]
    }),
    HttpApiEndpoint.patch("update", "/cameras/:id", {
      params: cameraPath,
      payload: CameraUpdate,
      success: CameraView,
      error: [CameraNotFoundError, AgencyNotFoundError]
    }),
    HttpApiEndpoint.put("replace", "/cameras/:id", {
      params: cameraPath,
      payload: CameraUpdate,
      success: CameraView,
      error: [CameraNotFoundError, AgencyNotFoundError]
    }).annotate(OpenApi.Description, "Same as PATCH: applies the fields given"),
    HttpApiEndpoint.delete("remove", "/cameras/:id", {
      params: cameraPath,
      error: CameraNotFoundError
    }),
    HttpApiEndpoint.get("status", "/cameras/:id/status", {
      params: cameraPath,
      success: CameraStatus,
      error: [CameraNotFoundError, CameraUnavailableError]
    }),
    HttpApiEndpoint.get("snapshot", "/cameras/:id/snapshot", {
      params: cameraPath,
      success: Jpeg,
      error: [CameraNotFoundError, SnapshotUnavailableError, CameraUnavailableError]
    })
  )
  .annotate(OpenApi.Description, "Camera registry, live status and snapshots")
{}
