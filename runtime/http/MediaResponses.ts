/**
 * Responses of the media routes outside the REST API (`/playback`,
 * `/export`): the REST error envelope `{ error: { code, message, details?,
 * requestId } }` with an `X-Request-Id`, the decoded query of the request,
 * and files served whole or by byte range (206, `Content-Range`, 416).
 */
import { Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs/promises"
import type { Schema } from "effect"
import { decodeQuery } from "../recording/RecordingModel.ts"
import * as ByteRange from "./ByteRange.ts"

export const mediaError = (status: number, code: string, message: string, details?: unknown) => {
  const requestId = randomUUID()
  return HttpServerResponse.jsonUnsafe(
    { error: details === undefined ? { code, message, requestId } : { code, message, details, requestId } },
    { status, headers: { "cache-control": "no-store", "x-request-id": requestId, "access-control-allow-origin": "*" } }
  )
}

export const invalidRequest = (issues: ReadonlyArray<{ readonly field: string; readonly message: string }>) =>
  mediaError(400, "InvalidRequest", issues.map((issue) => `${issue.field}: ${issue.message}`).join("; "), issues)

/** The request's query decoded by `schema`, or the 400 response naming each bad parameter. */
export const query = <S extends Schema.Decoder<unknown>>(schema: S) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = Object.fromEntries(new URL(request.url, "http://localhost").searchParams)
    return yield* decodeQuery(schema, params).pipe(Effect.mapError(invalidRequest))
  })

/** A file, whole (200) or the requested byte range (206); 416 past its end; 404 when it is gone. */
export const serveFile = (
  file: string,
  options: { readonly contentType: string; readonly headers?: Record<string, string> }
) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const stat = yield* Effect.promise(() => fs.stat(file).catch(() => undefined))
    if (stat === undefined) return mediaError(404, "NotFound", "the recording is no longer available")
    const size = stat.size
    const headers = { "accept-ranges": "bytes", "access-control-allow-origin": "*", ...options.headers }
    const range = ByteRange.parse(request.headers["range"], size)
    if (range === "unsatisfiable") {
      return HttpServerResponse.empty({ status: 416, headers: { ...headers, "content-range": `bytes */${size}` } })
    }
    if (range === undefined) {
      return yield* HttpServerResponse.file(file, { contentType: options.contentType, headers })
    }
    return yield* HttpServerResponse.file(file, {
      status: 206,
      contentType: options.contentType,
      offset: range.start,
      bytesToRead: range.end - range.start + 1,
      headers: { ...headers, "content-range": ByteRange.contentRange(range, size) }
    })
  }).pipe(Effect.catchTag("PlatformError", () => Effect.succeed(mediaError(404, "NotFound", "the recording is no longer available"))))
