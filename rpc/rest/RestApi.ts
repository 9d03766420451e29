/**
 * The REST API: the `HttpApi` "vms" under `/api/v1` (OpenAPI document at
 * `/api/v1/openapi.json`), the `RestBoundary` middleware that every request
 * passes, and `layer`, which registers the routes on the node's
 * `HttpRouter`. The boundary gives each request an id (`X-Request-Id`),
 * caps bodies at 64 KiB, and turns what the endpoints' schemas reject, and
 * any defect, into the error envelope
 * `{ "error": { code, message, details?, requestId } }`.
 */
import { ByteSize, Effect, type FileSystem, Layer, type Path, SchemaAST, SchemaIssue, type Types } from "effect"
import {
  type Etag,
  HttpEffect,
  HttpIncomingMessage,
  type HttpPlatform,
  type HttpRouter,
  HttpServerError,
  HttpServerResponse
} from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiError, type HttpApiMiddleware, OpenApi } from "effect/http-api"
import { randomUUID } from "node:crypto"
import type { CameraControl } from "../../runtime/cameras/CameraControl.ts"
import { bodyParseOptions } from "../../runtime/cameras/CameraModel.ts"
import type { CameraStore } from "../../runtime/cameras/CameraStore.ts"
import {
  CamerasApi,
  failWith,
  InternalError,
  InvalidRequestError,
  PayloadTooLargeError,
  RequestId,
  RestBoundary
} from "./CamerasApi.ts"
import * as CamerasHandlers from "./CamerasHandlers.ts"
import { AuthApi, TokensApi, UsersApi } from "./AuthApi.ts"
import * as AuthHandlers from "./AuthHandlers.ts"
import * as RestAuthLayer from "./RestAuth.ts"
import { RestAuth } from "./RestAuth.ts"
import type { AuditLog } from "../../runtime/audit/AuditLog.ts"
import type { Authenticator } from "../../runtime/auth/Authenticator.ts"
import type { CredentialStore } from "../../runtime/auth/CredentialStore.ts"
import type { RateLimiter } from "../../runtime/auth/RateLimiter.ts"
import type { SigningSecret } from "../../runtime/auth/SigningSecret.ts"
import type { ApiMetrics } from "../../runtime/metrics/ApiMetrics.ts"
import type { MediaToken } from "../../runtime/recording/MediaToken.ts"
import { RecordingsApi } from "./RecordingsApi.ts"
import * as RecordingsHandlers from "./RecordingsHandlers.ts"
import type { RecordingIndex } from "../../runtime/recording/RecordingIndex.ts"
import type { Sharding } from "effect/cluster"
import type { AgencyStore } from "../../runtime/agencies/AgencyStore.ts"
import type { ViewerSessions } from "../../runtime/quota/ViewerSessions.ts"
import { AgenciesApi, ViewersApi } from "./ViewersApi.ts"
import * as ViewersHandlers from "./ViewersHandlers.ts"

export class Api extends HttpApi.make("vms")
  .add(CamerasApi.middleware(RestAuth))
  .add(RecordingsApi.middleware(RestAuth))
  .add(AuthApi)
  .add(TokensApi.middleware(RestAuth))
  .add(UsersApi.middleware(RestAuth))
  .add(ViewersApi.middleware(RestAuth))
  .add(AgenciesApi.middleware(RestAuth))
  .middleware(RestBoundary)
  .prefix("/api/v1")
  .annotate(HttpApi.PayloadParseOptions, bodyParseOptions)
  .annotate(HttpApi.QueryParseOptions, { errors: "all" })
  .annotate(HttpApi.ParamsParseOptions, { errors: "all" })
  .annotateMerge(OpenApi.annotations({ title: "vms REST API", version: "1" }))
{}

export const openapiPath = "/api/v1/openapi.json"

/** Request bodies above this answer 413 `PayloadTooLarge`. */
export const maxBodyBytes = 64 * 1024

// ---------------------------------------------------------------------------
// Decoding failures, worded for clients

const leafHook: SchemaIssue.LeafHook = (issue) => {
  switch (issue._tag) {
    case "MissingKey":
      return "is required"
    case "UnexpectedKey":
      return "is not a known field"
  }
  return SchemaIssue.defaultLeafHook(issue)
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({ leafHook })

const slotNames: Record<HttpApiError.HttpApiSchemaError["kind"], string> = {
  Params: "path",
  Query: "query",
  Headers: "headers",
  Payload: "body",
  Body: "response",
  ResponseHeaders: "response headers"
}

const pathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string => {
  const key = typeof segment === "object" && segment !== null ? segment.key : segment
  return String(key)
}

/** What is wrong with the body as a whole, before any field is looked at. */
const bodyProblem = (error: HttpApiError.HttpApiSchemaError): string | undefined => {
  if (error.kind !== "Payload") return undefined
  const issue = error.cause.issue
  // The builder reports a JSON parse failure as a bare InvalidValue at the root.
  if (issue._tag === "InvalidValue") return "is not valid JSON"
  const notAnObject = (issue._tag === "AnyOf" && issue.issues.length === 0) ||
    (issue._tag === "InvalidType" && SchemaAST.isObjects(issue.ast))
  return notAnObject ? "must be a JSON object" : undefined
}

/** One entry per problem, each naming its field (`url`, `limit`, …) or the part of the request. */
export const describeIssues = (error: HttpApiError.HttpApiSchemaError): Array<{ field: string; message: string }> => {
  const problem = bodyProblem(error)
  if (problem !== undefined) return [{ field: "body", message: problem }]
  return formatIssues(error.cause.issue).issues.map((issue) => ({
    field: issue.path === undefined || issue.path.length === 0
      ? slotNames[error.kind]
      : issue.path.map(pathSegment).join("."),
    message: issue.message
  }))
}

const isBodyTooLarge = (defect: unknown): boolean =>
  HttpServerError.isHttpServerError(defect) &&
  defect.reason._tag === "RequestParseError" &&
  defect.reason.reason === "BodyTooLarge"

const isUnreadableBody = (defect: unknown): boolean =>
  HttpServerError.isHttpServerError(defect) && defect.reason._tag === "RequestParseError"

// ---------------------------------------------------------------------------
// The boundary

type BoundaryError = InvalidRequestError | PayloadTooLargeError | InternalError

const internalError = (requestId: string, message: string, cause: unknown) =>
  Effect.logError(message, cause).pipe(Effect.andThen(failWith(InternalError, `internal error (request ${requestId})`)))

/** A request that its schemas rejected: 400 naming every field; a response that failed its schema: 500. */
const fromSchemaError = (requestId: string, error: HttpApiError.HttpApiSchemaError) => {
  if (error.kind === "Body" || error.kind === "ResponseHeaders") {
    return internalError(requestId, "response failed encoding", error.cause)
  }
  const issues = describeIssues(error)
  return failWith(InvalidRequestError, issues.map((issue) => `${issue.field}: ${issue.message}`).join("; "), issues)
}

/** Body read failures arrive as defects: too large is 413, unreadable is 400; anything else is a bug, 500. */
const fromDefect = (requestId: string, defect: unknown): Effect.Effect<never, BoundaryError, RequestId> => {
  if (isBodyTooLarge(defect)) return failWith(PayloadTooLargeError, `body: must be at most ${maxBodyBytes} bytes`)
  if (isUnreadableBody(defect)) return failWith(InvalidRequestError, "body: could not be read")
  return internalError(requestId, "request failed", defect)
}

const boundary: HttpApiMiddleware.HttpApiMiddleware<
  RequestId,
  [typeof InvalidRequestError, typeof PayloadTooLargeError, typeof InternalError],
  never
> = (httpEffect, { endpoint }) =>
  Effect.gen(function*() {
    const requestId = randomUUID()
    yield* HttpEffect.appendPreResponseHandler((_request, response) =>
      Effect.succeed(HttpServerResponse.setHeader(response, "x-request-id", requestId))
    )
    return yield* httpEffect.pipe(
      Effect.catch((error): Effect.Effect<never, BoundaryError | Types.unhandled, RequestId> =>
        HttpApiError.HttpApiSchemaError.is(error) ? fromSchemaError(requestId, error) : Effect.fail(error)
      ),
      Effect.catchDefect((defect) => fromDefect(requestId, defect)),
      Effect.provideService(RequestId, requestId),
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
      Effect.annotateLogs({ requestId, endpoint: endpoint.identifier })
    )
  })

export const boundaryLayer: Layer.Layer<RestBoundary> = Layer.succeed(RestBoundary, boundary)

// ---------------------------------------------------------------------------
// Routes

/**
 * The REST routes on the node's `HttpRouter`, for `HttpRouter.serve`. Needs
 * `CameraStore` and `CameraControl`, plus the platform services that
 * `NodeHttpServer.layer` provides.
 */
export const layer: Layer.Layer<
  never,
  never,
  | CameraStore
  | CameraControl
  | Authenticator
  | CredentialStore
  | RateLimiter
  | SigningSecret
  | ApiMetrics
  | AuditLog
  | MediaToken
  | RecordingIndex
  | ViewerSessions
  | AgencyStore
  | Sharding.Sharding
  | HttpRouter.HttpRouter
  | Etag.Generator
  | HttpPlatform.HttpPlatform
  | FileSystem.FileSystem
  | Path.Path
> = HttpApiBuilder.layer(Api, { openapiPath }).pipe(
  Layer.provide(CamerasHandlers.layer(Api)),
  Layer.provide(AuthHandlers.authLayer(Api)),
  Layer.provide(AuthHandlers.tokensLayer(Api)),
  Layer.provide(AuthHandlers.usersLayer(Api)),
  Layer.provide(ViewersHandlers.viewersLayer(Api)),
  Layer.provide(ViewersHandlers.agenciesLayer(Api)),
  Layer.provide(RecordingsHandlers.layer(Api)),
  Layer.provide(RestAuthLayer.layer),
  Layer.provide(boundaryLayer)
)
