/**
 * MP4 exports of recorded ranges: ffmpeg's concat demuxer over the
 * segments that overlap the range, each clipped with `inpoint`/`outpoint`
 * (`-ss` on the concat demuxer produces broken files in ffmpeg 5.1; both are
 * timestamps of the file, so ffprobe reads the start time of the clipped
 * segments: a live run's segments do not start at 0),
 * stream-copied into an MP4 with the index up front (`+faststart`). Gaps
 * are skipped: the file holds the recorded time only. Exports are cached
 * under `<data>/exports` by camera, range and segments (so byte-range
 * requests of one download hit one file) and deleted an hour after they
 * were made; concurrent requests for the same export share one ffmpeg.
 */
import { Context, Deferred, Effect, Layer, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"
import { type RecordedSegment, RecordingIndex, type RecordingIndexError } from "./RecordingIndex.ts"
import * as SegmentProbe from "./SegmentProbe.ts"
import { type SegmentStoreError, SegmentStore } from "./SegmentStore.ts"

export class NoRecording extends Schema.TaggedError<NoRecording>()("NoRecording", {
  cameraId: Schema.String
}) {}

export class ExportFailed extends Schema.TaggedError<ExportFailed>()("ExportFailed", {
  cameraId: Schema.String,
  message: Schema.String
}) {}

export interface ExportedFile {
  readonly file: string
  readonly bytes: number
  /** Recorded time in the file. */
  readonly durationMs: number
  /** Time this request spent making the file (0 when it was cached). */
  readonly producedMs: number
}

export class Exporter extends Context.Service<Exporter, {
  readonly exportRange: (
    cameraId: string,
    fromMs: number,
    toMs: number
  ) => Effect.Effect<ExportedFile, NoRecording | ExportFailed | RecordingIndexError | SegmentStoreError>
}>()("vms/runtime/recording/Exporter") {}

const keepMs = 3_600_000
const maxSegments = 50_000

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`

export interface ConcatInput {
  readonly source: string
  readonly segment: RecordedSegment
  /** The file's first timestamp in seconds (needed only for a clipped segment). */
  readonly startSeconds: number
}

/** Whether the range clips the segment, so its start time must be known. */
export const isClipped = (segment: RecordedSegment, fromMs: number, toMs: number) =>
  fromMs > segment.startMs || toMs < segment.endMs

/** The concat demuxer's list: each segment, clipped to the range (in the file's own timestamps). */
export const concatList = (inputs: ReadonlyArray<ConcatInput>, fromMs: number, toMs: number) => {
  const lines = ["ffconcat version 1.0"]
  for (const { segment, source, startSeconds } of inputs) {
    lines.push(`file ${quote(source)}`)
    if (fromMs > segment.startMs) lines.push(`inpoint ${(startSeconds + (fromMs - segment.startMs) / 1000).toFixed(3)}`)
    if (toMs < segment.endMs) lines.push(`outpoint ${(startSeconds + (toMs - segment.startMs) / 1000).toFixed(3)}`)
  }
  return `${lines.join("\n")}\n`
}

export const recordedMs = (segments: ReadonlyArray<RecordedSegment>, fromMs: number, toMs: number) =>
  segments.reduce((sum, s) => sum + Math.max(0, Math.min(toMs, s.endMs) - Math.max(fromMs, s.startMs)), 0)

export const layer = Layer.effect(
  Exporter,
  Effect.gen(function*() {
    const index = yield* RecordingIndex
    const store = yield* SegmentStore
    const config = yield* NodeConfig
    const dataDir = yield* DataDir
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const dir = path.join(dataDir.path, "exports")
    yield* Effect.promise(() => fs.rm(dir, { recursive: true, force: true }).then(() => fs.mkdir(dir, { recursive: true })))
    const inFlight = new Map<string, Deferred.Deferred<ExportedFile, ExportFailed | SegmentStoreError>>()

    const removeOld = Effect.promise(async () => {
      const now = Date.now()
      for (const name of await fs.readdir(dir).catch((): Array<string> => [])) {
        const file = path.join(dir, name)
        const stat = await fs.stat(file).catch(() => undefined)
        if (stat !== undefined && now - stat.mtimeMs > keepMs) await fs.rm(file, { force: true })
      }
    })

    const firstTimestamp = (cameraId: string, source: string) =>
      spawner.string(ChildProcess.make(SegmentProbe.ffprobePath(config.ffmpegPath), [
        "-v", "error", "-protocol_whitelist", "file,http,https,tcp,tls,crypto",
        "-show_entries", "format=start_time", "-of", "csv=p=0", source
      ], { stdin: "ignore" })).pipe(
        Effect.map((text) => Number(text.trim())),
        Effect.flatMap((start) =>
          Number.isFinite(start) ? Effect.succeed(start) : Effect.fail(new ExportFailed({ cameraId, message: "segment has no start time" }))),
        Effect.catchTag("PlatformError", (error) => Effect.fail(new ExportFailed({ cameraId, message: error.message })))
      )

    const runFfmpeg = (cameraId: string, list: string, output: string) =>
      Effect.gen(function*() {
        const handle = yield* spawner.spawn(ChildProcess.make(config.ffmpegPath, [
          "-hide_banner", "-nostdin", "-loglevel", "error",
          "-f", "concat", "-safe", "0", "-protocol_whitelist", "file,http,https,tcp,tls,crypto",
          "-i", list,
          "-map", "0:v", "-map", "0:a?", "-c", "copy",
          "-movflags", "+faststart", "-f", "mp4", "-y", output
        ], { stdin: "ignore", stdout: "ignore" }))
        const [errors, exitCode] = yield* Effect.all([
          Stream.runCollect(handle.stderr).pipe(Effect.map((parts) => new TextDecoder().decode(Buffer.concat(parts)).trim())),
          handle.exitCode
        ], { concurrency: "unbounded" })
        if (Number(exitCode) !== 0) {
          return yield* new ExportFailed({ cameraId, message: errors.split("\n").at(-1) || `ffmpeg exited with ${exitCode}` })
        }
      }).pipe(
        Effect.scoped,
        Effect.catchTag("PlatformError", (error) => Effect.fail(new ExportFailed({ cameraId, message: error.message })))
      )

    const produce = (cameraId: string, segments: ReadonlyArray<RecordedSegment>, fromMs: number, toMs: number, output: string) =>
      Effect.gen(function*() {
        const inputs = yield* Effect.forEach(segments, (segment) =>
          Effect.gen(function*() {
            const found = yield* store.source(segment.objectKey, 6 * 3_600)
            const source = found._tag === "File" ? found.path : found.url
            const startSeconds = isClipped(segment, fromMs, toMs) ? yield* firstTimestamp(cameraId, source) : 0
            return { segment, source, startSeconds }
          }))
        const temporary = `${output}.${randomBytes(4).toString("hex")}`
        const list = `${temporary}.ffconcat`
        yield* Effect.promise(() => fs.writeFile(list, concatList(inputs, fromMs, toMs)))
        yield* runFfmpeg(cameraId, list, `${temporary}.mp4`).pipe(
          Effect.ensuring(Effect.promise(() => fs.rm(list, { force: true })))
        )
        yield* Effect.promise(() => fs.rename(`${temporary}.mp4`, output))
        const stat = yield* Effect.promise(() => fs.stat(output))
        return { file: output, bytes: stat.size, durationMs: recordedMs(segments, fromMs, toMs), producedMs: 0 }
      })

    return Exporter.of({
      exportRange: Effect.fn("Exporter.exportRange")(function*(cameraId: string, fromMs: number, toMs: number) {
        const segments = yield* index.list(cameraId, fromMs, toMs, maxSegments)
        if (segments.length === 0) return yield* new NoRecording({ cameraId })
        const key = createHash("sha256")
          .update(`${cameraId}\n${fromMs}\n${toMs}\n${segments.map((s) => `${s.id}:${s.bytes}`).join(",")}`)
          .digest("hex")
          .slice(0, 32)
        const output = path.join(dir, `${key}.mp4`)
        const existing = yield* Effect.promise(() => fs.stat(output).catch(() => undefined))
        if (existing !== undefined) {
          return { file: output, bytes: existing.size, durationMs: recordedMs(segments, fromMs, toMs), producedMs: 0 }
        }
        const running = inFlight.get(key)
        if (running !== undefined) return yield* Deferred.await(running)
        const done = Deferred.makeUnsafe<ExportedFile, ExportFailed | SegmentStoreError>()
        inFlight.set(key, done)
        yield* removeOld
        const started = Date.now()
        return yield* produce(cameraId, segments, fromMs, toMs, output).pipe(
          Effect.map((exported) => ({ ...exported, producedMs: Date.now() - started })),
          Effect.tap((exported) =>
            Effect.logInfo("export made").pipe(
              Effect.annotateLogs({ cameraId, segments: segments.length, bytes: exported.bytes, recordedMs: exported.durationMs, ms: Date.now() - started })
            )
          ),
          Effect.exit,
          Effect.flatMap((exit) => Effect.andThen(Deferred.done(done, exit), exit)),
          Effect.ensuring(Effect.sync(() => inFlight.delete(key)))
        )
      })
    })
  })
)
