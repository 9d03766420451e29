/**
 * What ffprobe says about a spooled MPEG-TS segment a dead process left
 * open: its duration and its video stream. Used only when recovering such a
 * segment; closed segments carry these facts in their sidecar.
 */
import { Effect, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as path from "node:path"

export class ProbeFailed extends Schema.TaggedError<ProbeFailed>()("ProbeFailed", {
  file: Schema.String,
  message: Schema.String
}) {}

/** ffprobe beside the configured ffmpeg (or on PATH when ffmpeg is a bare name). */
export const ffprobePath = (ffmpegPath: string): string =>
  ffmpegPath.includes("/") ? path.join(path.dirname(ffmpegPath), path.basename(ffmpegPath).replace(/ffmpeg/, "ffprobe")) : "ffprobe"

const ProbeOutput = Schema.fromJsonString(Schema.Struct({
  streams: Schema.optionalKey(Schema.Array(Schema.Struct({
    codec_name: Schema.optionalKey(Schema.String),
    width: Schema.optionalKey(Schema.Number),
    height: Schema.optionalKey(Schema.Number)
  }))),
  format: Schema.optionalKey(Schema.Struct({ duration: Schema.optionalKey(Schema.String) }))
}))

export interface SegmentFacts {
  readonly durationMs: number
  readonly codec: string | null
  readonly width: number | null
  readonly height: number | null
}

const concat = (parts: ReadonlyArray<Uint8Array>) => new TextDecoder().decode(Buffer.concat(parts))

export const probe = (
  ffmpegPath: string,
  file: string
): Effect.Effect<SegmentFacts, ProbeFailed, ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const handle = yield* spawner.spawn(ChildProcess.make(ffprobePath(ffmpegPath), [
      "-v", "error", "-select_streams", "v:0",
      "-show_entries", "stream=codec_name,width,height:format=duration",
      "-of", "json", file
    ], { stdin: "ignore" }))
    const [stdout, stderr, exitCode] = yield* Effect.all([
      Stream.runCollect(handle.stdout).pipe(Effect.map(concat)),
      Stream.runCollect(handle.stderr).pipe(Effect.map(concat)),
      handle.exitCode
    ], { concurrency: "unbounded" })
    if (Number(exitCode) !== 0) {
      return yield* new ProbeFailed({ file, message: stderr.trim().split("\n").at(-1) || `ffprobe exited with ${exitCode}` })
    }
    const output = yield* Schema.decodeUnknownEffect(ProbeOutput)(stdout).pipe(
      Effect.mapError((error) => new ProbeFailed({ file, message: error.message }))
    )
    const duration = Number(output.format?.duration)
    if (!Number.isFinite(duration) || duration <= 0) {
      return yield* new ProbeFailed({ file, message: "no duration (empty or unreadable segment)" })
    }
    const video = output.streams?.[0]
    return {
      durationMs: Math.round(duration * 1000),
      codec: video?.codec_name ?? null,
      width: video?.width ?? null,
      height: video?.height ?? null
    }
  }).pipe(
    Effect.scoped,
    Effect.catchTag("PlatformError", (error) => Effect.fail(new ProbeFailed({ file, message: error.message })))
  )
