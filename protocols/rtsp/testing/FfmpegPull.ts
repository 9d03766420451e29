/**
 * An ffmpeg RTSP client pulling one stream, as tests and benchmarks use it:
 * decodes it (or stream-copies it) to the null muxer for a given stream
 * duration and reports frames, stream time and wall time from `-progress`,
 * plus every stderr line that signals a decoding or transport problem.
 */
import { Effect, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

export interface PullOptions {
  readonly url: string
  readonly transport: "tcp" | "udp"
  /** Stream seconds to read (`-t`); unlimited when absent. */
  readonly seconds?: number
  /** `decode` decodes every frame (single-threaded); `copy` only demuxes. */
  readonly mode: "decode" | "copy"
  readonly ffmpegPath?: string
  /** RTSP socket timeout (`-timeout`, µs). */
  readonly socketTimeoutMicros?: number
  /** Called with each progress report (about twice a second). */
  readonly onProgress?: (progress: PullProgress) => void
}

export interface PullProgress {
  readonly frames: number
  readonly outTimeSeconds: number
  readonly atMs: number
}

export interface PullResult {
  readonly exitCode: number
  readonly frames: number
  readonly outTimeSeconds: number
  /** Wall time from spawn to exit. */
  readonly wallSeconds: number
  /** Wall time of the first progress report with a frame, relative to spawn. */
  readonly firstFrameSeconds: number | undefined
  /** frames / stream time. */
  readonly fps: number
  readonly problems: ReadonlyArray<string>
  readonly stderr: string
}

const ProblemPattern =
  /error|concealing|non-existing|missing picture|invalid|corrupt|missed \d+ packets|max delay reached|no frame|decode_slice/i

export const pullArguments = (options: PullOptions): Array<string> => [
  "-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning",
  "-rtsp_transport", options.transport,
  ...(options.socketTimeoutMicros === undefined ? [] : ["-timeout", `${options.socketTimeoutMicros}`]),
  ...(options.mode === "decode" ? ["-threads", "1"] : []),
  "-i", options.url,
  ...(options.seconds === undefined ? [] : ["-t", `${options.seconds}`]),
  "-an", ...(options.mode === "copy" ? ["-c", "copy"] : []),
  "-f", "null", "-progress", "pipe:1", "-"
]

export const pull = Effect.fn("FfmpegPull.pull")(function*(options: PullOptions) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const startedAt = Date.now()
  let frames = 0
  let outTimeSeconds = 0
  let firstFrameSeconds: number | undefined
  const stderrLines: Array<string> = []
  const exitCode = yield* Effect.scoped(Effect.gen(function*() {
    const handle = yield* spawner.spawn(
      ChildProcess.make(options.ffmpegPath ?? "ffmpeg", pullArguments(options), { stdin: "ignore" })
    )
    const progress = handle.stdout.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) =>
        Effect.sync(() => {
          const eq = line.indexOf("=")
          const key = line.slice(0, eq)
          const value = line.slice(eq + 1)
          if (key === "frame") frames = Number(value)
          else if (key === "out_time_us" && value !== "N/A") outTimeSeconds = Number(value) / 1e6
          else if (key === "progress") {
            const atMs = Date.now()
            if (frames > 0 && firstFrameSeconds === undefined) firstFrameSeconds = (atMs - startedAt) / 1000
            options.onProgress?.({ frames, outTimeSeconds, atMs })
          }
        })
      )
    )
    const errors = handle.stderr.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) => Effect.sync(() => void stderrLines.push(line)))
    )
    yield* Effect.all([progress, errors], { concurrency: 2, discard: true })
    return yield* handle.exitCode
  }))
  return {
    exitCode,
    frames,
    outTimeSeconds,
    wallSeconds: (Date.now() - startedAt) / 1000,
    firstFrameSeconds,
    fps: outTimeSeconds > 0 ? frames / outTimeSeconds : 0,
    problems: stderrLines.filter((line) => ProblemPattern.test(line)),
    stderr: stderrLines.join("\n")
  } satisfies PullResult
})
