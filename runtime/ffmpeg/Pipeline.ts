/**
 * A camera's supervised ingest pipeline: runs ffmpeg (IngestProcess) again
 * and again for as long as its fiber lives. Any exit restarts it (ffmpeg
 * exits 0 when the source drops) after an exponential backoff with jitter,
 * reset by a healthy minute; a watchdog kills a run that made no progress
 * (no new frame, no new chunk) for `stallMs`, since a hung source hangs
 * ffmpeg forever. Runs that never come online in a row turn the camera to
 * `error` with ffmpeg's last error line. Interrupting the fiber kills the
 * process group.
 */
import { Effect, Option } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import type { LiveStream } from "../live/LiveStream.ts"
import { CameraMetrics } from "../metrics/CameraMetrics.ts"
import { type BackoffPolicy, delayMs } from "./Backoff.ts"
import * as IngestProcess from "./IngestProcess.ts"
import { SpawnPacer } from "./SpawnPacer.ts"
import type { StreamInfo } from "./StderrLog.ts"
import { WarmFfmpeg } from "./WarmFfmpeg.ts"

export type PipelineState = "connecting" | "online" | "offline" | "error"

export interface PipelineOptions {
  readonly cameraId: string
  readonly url: string
  readonly ffmpegPath: string
  readonly live: LiveStream
  readonly backoff: BackoffPolicy
  readonly stallMs: number
  /** Consecutive runs that never came online before the camera shows `error`. */
  readonly failuresBeforeError: number
  readonly chunkSeconds: number
  readonly socketTimeoutMs: number
  /**
   * Asked right before each ffmpeg spawn: may this node still run the camera
   * (its lease on the camera's shard holds)? When not, the pipeline waits
   * without spawning (whoever runs it watches the lease and stops it).
   */
  readonly mayRun?: () => boolean
  /** How long before the camera's next keyframe a stop ends ffmpeg (see IngestProcess); undefined: at once. */
  readonly stopLeadMs?: () => number | undefined
  /** Ends a stop's wait for its keyframe at once when done first (the lease is lost). */
  readonly stopWaitEnds?: Effect.Effect<void>
}

export interface PipelineReport {
  readonly state: (state: PipelineState, reason: string | null) => Effect.Effect<void>
  readonly rates: (fps: number, bitrateBits: number) => Effect.Effect<void>
  readonly streamInfo: (info: StreamInfo) => Effect.Effect<void>
}

type RunOutcome =
  | { readonly _tag: "Exited"; readonly exitCode: number; readonly reason: string | undefined }
  | { readonly _tag: "Stalled" }
  | { readonly _tag: "SpawnFailed"; readonly reason: string }

/** Rolling fps (frames over the last 5 s of progress) and bitrate (bytes over the last 5 chunks). */
const makeRates = () => {
  const frames: Array<{ readonly at: number; readonly frames: number }> = []
  const chunks: Array<{ readonly bytes: number; readonly seconds: number }> = []
  return {
    frames(at: number, count: number) {
      frames.push({ at, frames: count })
      while (frames.length > 2 && at - frames[0]!.at > 5_000) frames.shift()
    },
    chunk(bytes: number, seconds: number) {
      chunks.push({ bytes, seconds })
      if (chunks.length > 5) chunks.shift()
    },
    fps() {
      const first = frames[0]
      const last = frames.at(-1)
      if (first === undefined || last === undefined || last.at <= first.at) return 0
      return Math.round(((last.frames - first.frames) * 1000 / (last.at - first.at)) * 100) / 100
    },
    bitrate() {
      const seconds = chunks.reduce((sum, c) => sum + c.seconds, 0)
      return seconds > 0 ? Math.round(chunks.reduce((sum, c) => sum + c.bytes, 0) * 8 / seconds) : 0
    }
  }
}

export const run = (
  options: PipelineOptions,
  report: PipelineReport
): Effect.Effect<never, never, ChildProcessSpawner.ChildProcessSpawner | SpawnPacer | CameraMetrics> =>
  Effect.gen(function*() {
    const pacer = yield* SpawnPacer
    const metrics = yield* CameraMetrics
    const { cameraId, live } = options
    let attempt = 0
    let failedRuns = 0

    yield* report.state("connecting", null)
    const warm = yield* Effect.serviceOption(WarmFfmpeg)
    while (true) {
      // A waiting ffmpeg costs next to nothing to start: only cold starts wait for a slot.
      if (Option.isNone(warm) || (yield* warm.value.idle) === 0) yield* pacer.pace
      if (options.mayRun !== undefined && !options.mayRun()) {
        // Whoever runs the pipeline watches the same ownership and stops it; until then, no ffmpeg.
        yield* Effect.logWarning("camera not owned by this node now; not starting ffmpeg")
        while (!options.mayRun()) yield* Effect.sleep("100 millis")
        continue
      }
      const startNumber = yield* live.beginRun
      const startedAt = Date.now()
      let onlineAt: number | undefined
      let lastProgressAt = startedAt
      let lastFrames = 0
      let lastDropped = 0
      const rates = makeRates()

      const onEvent = (event: IngestProcess.IngestEvent): Effect.Effect<void> => {
        const now = Date.now()
        switch (event._tag) {
          case "Progress": {
            const { block } = event
            if (block.frames > lastFrames) lastProgressAt = now
            metrics.droppedFrames(cameraId, block.droppedFrames - lastDropped)
            lastDropped = block.droppedFrames
            lastFrames = block.frames
            // Frames buffered while ffmpeg probed the stream arrive in a burst before the first
            // chunk: the rate window starts once the camera is online.
            if (onlineAt === undefined) return Effect.void
            rates.frames(now, block.frames)
            return report.rates(rates.fps(), rates.bitrate())
          }
          case "StreamInfo":
            return report.streamInfo(event.info)
          case "Chunk":
            return Effect.gen(function*() {
              const chunk = yield* live.chunkFinished(event.file, event.endSeconds - event.startSeconds)
              if (chunk === undefined) return
              lastProgressAt = now
              metrics.ingestedBytes(cameraId, chunk.bytes)
              rates.chunk(chunk.bytes, chunk.durationSeconds)
              if (onlineAt === undefined) {
                onlineAt = now
                yield* report.state("online", null)
                yield* report.rates(rates.fps(), rates.bitrate())
              }
            })
        }
      }

      const watchdog = Effect.gen(function*() {
        while (Date.now() - lastProgressAt < options.stallMs) {
          yield* Effect.sleep(Math.max(100, options.stallMs - (Date.now() - lastProgressAt)))
        }
        return { _tag: "Stalled" } as RunOutcome
      })
      const ingest = IngestProcess.run(
        {
          ffmpegPath: options.ffmpegPath,
          url: options.url,
          dir: live.dir,
          startNumber,
          chunkSeconds: options.chunkSeconds,
          socketTimeoutMs: options.socketTimeoutMs,
          ...(options.stopLeadMs === undefined ? {} : { stopLeadMs: options.stopLeadMs }),
          ...(options.stopWaitEnds === undefined ? {} : { stopWaitEnds: options.stopWaitEnds })
        },
        onEvent
      ).pipe(
        Effect.map((exit): RunOutcome => ({ _tag: "Exited", exitCode: exit.exitCode, reason: exit.lastReason })),
        Effect.catch((error) => Effect.succeed<RunOutcome>({ _tag: "SpawnFailed", reason: error.message }))
      )
      const outcome = yield* Effect.raceFirst(ingest, watchdog).pipe(Effect.scoped)

      const wasOnline = onlineAt !== undefined
      if (wasOnline && Date.now() - onlineAt! >= options.backoff.resetAfterMs) attempt = 0
      attempt++
      failedRuns = wasOnline ? 0 : failedRuns + 1
      const reason = outcome._tag === "Stalled"
        ? `no video for ${options.stallMs / 1000} s (source hung); restarting`
        : outcome._tag === "SpawnFailed"
        ? `cannot start ffmpeg: ${outcome.reason}`
        : wasOnline && outcome.exitCode === 0
        ? `stream ended${outcome.reason === undefined ? "" : `: ${outcome.reason}`}`
        : outcome.reason ?? `ffmpeg exited with code ${outcome.exitCode}`
      if (outcome._tag === "Stalled") metrics.stall(cameraId)
      metrics.restart(cameraId)
      const delay = delayMs(options.backoff, attempt)
      yield* Effect.logWarning("pipeline stopped; restarting").pipe(
        Effect.annotateLogs({ outcome: outcome._tag, reason, ranMs: Date.now() - startedAt, restartInMs: delay })
      )
      yield* report.state(failedRuns >= options.failuresBeforeError ? "error" : "offline", reason)
      yield* report.rates(0, 0)
      yield* Effect.sleep(delay)
    }
  }).pipe(Effect.annotateLogs({ cameraId: options.cameraId }))
