/**
 * `GET /export/{cameraId}.mp4?from&to`: the recorded range as one MP4 (see
 * `Exporter`), served as a download (`Content-Disposition` with a file name
 * naming the camera and range) with HTTP Range support, so players can
 * seek and downloads can resume.
 */
import { Effect, Layer, Schema } from "effect"
import { type HttpPlatform, HttpRouter } from "effect/http"
import { Exporter } from "../recording/Exporter.ts"
import { CameraIdParam, RangeQuery, rangeProblem } from "../recording/RecordingModel.ts"
import { invalidRequest, mediaError, query, serveFile } from "./MediaResponses.ts"

/** One export covers at most a day. */
export const maxExportMs = 24 * 3_600_000

const isCameraId = Schema.is(CameraIdParam)

const compact = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

const exportRoute = Effect.gen(function*() {
  const exporter = yield* Exporter
  const file = (yield* HttpRouter.params).file ?? ""
  const cameraId = file.endsWith(".mp4") ? file.slice(0, -4) : ""
  if (!isCameraId(cameraId)) return mediaError(404, "NotFound", "expected /export/{cameraId}.mp4")
  const range = yield* query(RangeQuery)
  const problem = rangeProblem(range, maxExportMs)
  if (problem !== undefined) return invalidRequest([problem])
  const exported = yield* exporter.exportRange(cameraId, range.from, range.to)
  const filename = `${cameraId}_${compact(range.from)}_${compact(range.to)}.mp4`
  return yield* serveFile(exported.file, {
    contentType: "video/mp4",
    headers: {
      "content-disposition": `attachment; filename="${filename}"`,
      "cache-control": "private, max-age=3600",
      "x-recorded-ms": String(exported.durationMs),
      "x-export-ms": String(exported.producedMs)
    }
  })
}).pipe(
  Effect.catchTags({
    NoRecording: (error) => Effect.succeed(mediaError(404, "NoRecording", `camera '${error.cameraId}' has no recording between from and to`)),
    ExportFailed: (error) =>
      Effect.logError("export failed").pipe(
        Effect.annotateLogs({ cameraId: error.cameraId, error: error.message }),
        Effect.as(mediaError(500, "ExportFailed", "the export failed; the request id finds it in the log"))
      ),
    RecordingIndexError: () => Effect.succeed(mediaError(500, "InternalError", "the recording index is not reachable")),
    SegmentStoreError: () => Effect.succeed(mediaError(502, "StoreUnavailable", "the recording store is not reachable"))
  }),
  // What remains is the 400 answer for a bad query.
  Effect.catch((badQuery) => Effect.succeed(badQuery))
)

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const context = yield* Effect.context<Exporter | HttpPlatform.HttpPlatform>()
    yield* router.add("GET", "/export/:file", exportRoute.pipe(Effect.provideContext(context)))
  })
)

