/**
 * Recorded video as VOD HLS: `GET /playback/{cameraId}/index.m3u8?from&to`
 * lists the segments overlapping the range from the index in one query
 * (`#EXT-X-PROGRAM-DATE-TIME` per segment, `#EXT-X-DISCONTINUITY` at gaps,
 * `#EXT-X-START` at `from`), each with a node URL signed for that segment
 * (`segments/{recordingId}.ts?token=…&ps=…&pa=…`, expiring; `ps` and `pa`
 * name the playback stream the guard admitted, and are signed too). The
 * segment route checks the token, renews the stream in the agency's quota
 * (or takes a slot again after a pause; 429 when the agency is full), then
 * serves the object from the filesystem store (byte ranges too) or
 * redirects to a presigned S3 URL. A range with nothing recorded is 404,
 * never an empty playlist.
 */
import { Effect, Layer, Schema } from "effect"
import { type HttpPlatform, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as VodPlaylist from "../../protocols/hls/VodPlaylist.ts"
import { PlaybackStream, playbackTtlMs, streamSuffix } from "../quota/PlaybackStreams.ts"
import { QuotaAdmissions } from "../quota/QuotaAdmissions.ts"
import { MediaToken } from "../recording/MediaToken.ts"
import { RecordingIndex } from "../recording/RecordingIndex.ts"
import { CameraIdParam, RangeQuery, rangeProblem } from "../recording/RecordingModel.ts"
import { SegmentStore } from "../recording/SegmentStore.ts"
import { invalidRequest, mediaError, query, serveFile } from "./MediaResponses.ts"

/** How long the segment URLs of a playlist stay valid. */
export const segmentUrlTtlMs = 6 * 3_600_000
/** At most this many segments in one playlist (a month of 60 s segments). */
const maxSegments = 50_000
const segmentName = /^(\d{1,18})\.ts$/

export const segmentPath = (cameraId: string, recordingId: string) => `/playback/${cameraId}/segments/${recordingId}.ts`

const isCameraId = Schema.is(CameraIdParam)

export const cameraParam = Effect.map(HttpRouter.params, (params) =>
  params.cameraId !== undefined && isCameraId(params.cameraId) ? params.cameraId : undefined)

const playlist = Effect.gen(function*() {
  const index = yield* RecordingIndex
  const tokens = yield* MediaToken
  const cameraId = yield* cameraParam
  if (cameraId === undefined) return invalidRequest([{ field: "cameraId", message: "must be a camera id" }])
  const range = yield* query(RangeQuery)
  const problem = rangeProblem(range)
  if (problem !== undefined) return invalidRequest([problem])
  const segments = yield* index.list(cameraId, range.from, range.to, maxSegments)
  if (segments.length === 0) return mediaError(404, "NoRecording", `camera '${cameraId}' has no recording between from and to`)
  const expires = Date.now() + segmentUrlTtlMs
  const stream = yield* Effect.serviceOption(PlaybackStream)
  const suffix = stream._tag === "Some" ? streamSuffix(stream.value) : undefined
  const text = VodPlaylist.render(
    segments.map((segment) => ({
      uri: suffix === undefined
        ? `segments/${segment.id}.ts?token=${tokens.sign(segmentPath(cameraId, segment.id), expires)}`
        : `segments/${segment.id}.ts?token=${tokens.sign(`${segmentPath(cameraId, segment.id)}?${suffix}`, expires)}&${suffix}`,
      startMs: segment.startMs,
      durationMs: segment.durationMs
    })),
    { startAtMs: range.from }
  )
  return HttpServerResponse.text(text, {
    contentType: "application/vnd.apple.mpegurl",
    headers: { "cache-control": "private, max-age=60", "access-control-allow-origin": "*" }
  })
}).pipe(
  Effect.catchTag("RecordingIndexError", () => Effect.succeed(mediaError(500, "InternalError", "the recording index is not reachable"))),
  // What remains is the 400 answer for a bad query.
  Effect.catch((badQuery) => Effect.succeed(badQuery))
)

const segment = Effect.gen(function*() {
  const index = yield* RecordingIndex
  const store = yield* SegmentStore
  const tokens = yield* MediaToken
  const request = yield* HttpServerRequest.HttpServerRequest
  const cameraId = yield* cameraParam
  const name = segmentName.exec((yield* HttpRouter.params).segment ?? "")
  if (cameraId === undefined || name === null) return mediaError(404, "NotFound", "no such segment")
  const recordingId = name[1]!
  const params = new URL(request.url, "http://localhost").searchParams
  const token = params.get("token") ?? ""
  const [streamId, agencyId] = [params.get("ps"), params.get("pa")]
  const stream = streamId === null || agencyId === null ? undefined : { id: streamId, agencyId }
  const signed = stream === undefined ? segmentPath(cameraId, recordingId) : `${segmentPath(cameraId, recordingId)}?${streamSuffix(stream)}`
  const check = tokens.verify(signed, token, Date.now())
  if (check !== "valid") {
    return mediaError(403, "Forbidden", check === "expired" ? "token: has expired; reload the playlist" : "token: is missing or not valid for this segment")
  }
  if (stream !== undefined) {
    const admissions = yield* QuotaAdmissions
    const held = yield* Effect.result(admissions.admit(stream.agencyId, {
      reservationId: stream.id,
      cameraId,
      holder: "playback",
      kind: "playback",
      ttlMs: playbackTtlMs
    }))
    if (held._tag === "Failure") {
      const error = held.failure
      if (error._tag === "QuotaExceeded") {
        return mediaError(429, "QuotaExceeded", error.message, { agencyId: error.agencyId, limit: error.limit, inUse: error.inUse, kind: error.kind })
      }
      return mediaError(503, "QuotaUnavailable", error.message)
    }
  }
  const found = yield* index.get(cameraId, recordingId)
  if (found === undefined) return mediaError(404, "NotFound", "the recording is no longer available")
  const source = yield* store.source(found.objectKey, 3_600)
  if (source._tag === "Url") return HttpServerResponse.redirect(source.url, { status: 302, headers: { "access-control-allow-origin": "*" } })
  return yield* serveFile(source.path, { contentType: "video/mp2t", headers: { "cache-control": "private, max-age=3600, immutable" } })
}).pipe(
  Effect.catchTags({
    RecordingIndexError: () => Effect.succeed(mediaError(500, "InternalError", "the recording index is not reachable")),
    SegmentStoreError: () => Effect.succeed(mediaError(502, "StoreUnavailable", "the recording store is not reachable"))
  })
)

/** Registers the routes on the running router. */
export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const context = yield* Effect.context<
      RecordingIndex | SegmentStore | MediaToken | QuotaAdmissions | HttpPlatform.HttpPlatform
    >()
    yield* router.add("GET", "/playback/:cameraId/index.m3u8", playlist.pipe(Effect.provideContext(context)))
    yield* router.add("GET", "/playback/:cameraId/segments/:segment", segment.pipe(Effect.provideContext(context)))
  })
)
