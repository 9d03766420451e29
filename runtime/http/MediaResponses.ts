/**
 * Responses of the media routes outside the REST API (`/playback`,
 * `/export`): the REST error envelope `{ error: { code, message, details?,
 * requestId } }` with an `X-Request-Id`, the decoded query of the request,
 * and files served whole or by byte range (206, `Content-Range`, 416).
 */
import { Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import { Readable } from "node:stream"
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

/** Bytes per read when streaming a file: large reads halve the cost of multi-hundred-megabyte exports. */
const readChunkBytes = 1024 * 1024

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
    const headers = {
      "accept-ranges": "bytes",
      "access-control-allow-origin": "*",
      "content-type": options.contentType,
      ...options.headers
    }
    const range = ByteRange.parse(request.headers["range"], size)
    if (range === "unsatisfiable") {
      return HttpServerResponse.empty({ status: 416, headers: { ...headers, "content-range": `bytes */${size}` } })
    }
    const span = range ?? { start: 0, end: size - 1 }
    const length = size === 0 ? 0 : span.end - span.start + 1
    // Opened when the response is written (a HEAD or an aborted request opens nothing).
    const body = length === 0
      ? Readable.from([])
      : lazyReadable(() => fsSync.createReadStream(file, { start: span.start, end: span.end, highWaterMark: readChunkBytes }))
    return HttpServerResponse.raw(body, {
      status: range === undefined ? 200 : 206,
      headers: {
        ...headers,
        "content-length": String(length),
        ...(range === undefined ? {} : { "content-range": ByteRange.contentRange(range, size) })
      }
    })
  })

/** A Readable that opens its source on first read. */
const lazyReadable = (open: () => Readable): Readable => {
  let source: Readable | undefined
  const lazy = new Readable({
    read() {
      if (source !== undefined) return source.resume()
      source = open()
      source.on("data", (chunk) => {
        if (!lazy.push(chunk)) source!.pause()
      })
      source.once("end", () => lazy.push(null))
      source.once("error", (error) => lazy.destroy(error))
    },
    destroy(error, callback) {
      source?.destroy()
      callback(error)
    }
  })
  return lazy
}
