/**
 * One ffmpeg run for one camera: a single RTSP session (TCP), video only,
 * stream copy, cut into ~1 s MPEG-TS chunks on keyframes by the segment
 * muxer. ffmpeg reports on three pipes: `-progress` on stdout, the list of
 * finished chunks (CSV) on fd 3, and its log on stderr. Every consumer of the
 * camera's video (live HLS, snapshots, the recorder) reads these chunks, so
 * the camera sees one session whatever runs on top.
 *
 * The process is a scoped resource in its own process group: closing the
 * scope sends SIGTERM to the group, then SIGKILL after a second. When the
 * node keeps waiting ffmpegs (WarmFfmpeg), a run takes one of those, already
 * started, instead of spawning a new one.
 */
import { Effect, Fiber, Option, Stream } from "effect"
import type { PlatformError } from "effect/PlatformError"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import type { Scope } from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import { StringDecoder } from "node:string_decoder"
import * as KeyframeClock from "./KeyframeClock.ts"
import { makeProgressParser, type ProgressBlock } from "./Progress.ts"
import { cleanReason, isReasonLine, parseStreamInfo, type StreamInfo } from "./StderrLog.ts"
import { ffmpegNiceness } from "./SpawnPacer.ts"
import { WarmFfmpeg } from "./WarmFfmpeg.ts"

export interface IngestRunOptions {
  readonly ffmpegPath: string
  readonly url: string
  /** Directory the chunks are written to (ffmpeg's working directory). */
  readonly dir: string
  /** Number of the first chunk, so numbering continues across runs. */
  readonly startNumber: number
  /** Target chunk length; ffmpeg cuts at the first keyframe after it. */
  readonly chunkSeconds: number
  /** RTSP socket I/O timeout (ffmpeg gives up after about twice this). */
  readonly socketTimeoutMs: number
  /**
   * Asked when the run is stopped: stop ffmpeg this long before the camera's
   * next keyframe (the camera moves to another node, see KeyframeClock), or
   * at once when undefined.
   */
  readonly stopLeadMs?: () => number | undefined
  /**
   * Ends that wait at once when done first: the camera's lease is lost, and
   * a successor may start its own ffmpeg any moment.
   */
  readonly stopWaitEnds?: Effect.Effect<void>
}

/** The longest a stop waits for its moment before a keyframe. */
const maxStopWaitMs = 1_500

export type IngestEvent =
  | { readonly _tag: "Progress"; readonly block: ProgressBlock }
  | { readonly _tag: "StreamInfo"; readonly info: StreamInfo }
  | { readonly _tag: "Chunk"; readonly file: string; readonly startSeconds: number; readonly endSeconds: number }

export interface IngestExit {
  readonly exitCode: number
  /** The last stderr line that may explain the exit (credentials masked), or the signal that killed ffmpeg. */
  readonly lastReason: string | undefined
}

/**
 * util-linux's `setpriv --pdeathsig KILL` (always on Debian) makes the kernel
 * kill ffmpeg when the node dies, even by SIGKILL; without it an orphaned
 * ffmpeg would keep the camera's RTSP session and write chunks forever
 * (it ignores the broken progress pipe).
 */
const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((candidate) => fs.existsSync(candidate))

const command = (ffmpegPath: string, args: ReadonlyArray<string>): readonly [string, ReadonlyArray<string>] =>
  setpriv === undefined ? [ffmpegPath, args] : [setpriv, ["--pdeathsig", "KILL", "--", ffmpegPath, ...args]]

/** Chunk files are named `seg_<number>.ts`; nothing else is ever served. */
export const chunkFilePattern = /^seg_(\d{1,12})\.ts$/

export const ingestArgs = (options: IngestRunOptions): ReadonlyArray<string> => [
  "-hide_banner",
  "-nostdin",
  "-loglevel", "info",
  "-nostats",
  "-stats_period", "2",
  "-progress", "pipe:1",
  "-rtsp_transport", "tcp",
  "-timeout", String(options.socketTimeoutMs * 1000),
  // No probing: codec and size come from the SDP's parameter sets, and stream copy needs no more.
  // Probing made the first chunk (and so `online`, and failover) 1–1.5 s later.
  "-analyzeduration", "0",
  "-probesize", "32",
  "-i", options.url,
  "-map", "0:v:0",
  "-c", "copy",
  "-f", "segment",
  "-segment_format", "mpegts",
  "-segment_time", String(options.chunkSeconds),
  "-segment_list", "pipe:3",
  "-segment_list_type", "csv",
  "-segment_start_number", String(options.startNumber),
  "seg_%d.ts"
]

/**
 * Reads a pipe line by line with plain code and runs an effect only for the
 * lines that make an event: ffmpeg writes a dozen lines a second per camera,
 * and 200 cameras make that the node's hottest loop.
 */
const eachLine = <E>(
  stream: Stream.Stream<Uint8Array, E>,
  toEvent: (line: string) => IngestEvent | undefined,
  onEvent: (event: IngestEvent) => Effect.Effect<void>
): Effect.Effect<void, E> => {
  const decoder = new StringDecoder("utf8")
  let pending = ""
  const eventsOf = (text: string, flush: boolean): Array<IngestEvent> => {
    const events: Array<IngestEvent> = []
    const lines = (pending + text).split("\n")
    pending = flush ? "" : lines.pop()!
    for (const line of lines) {
      const event = toEvent(line.endsWith("\r") ? line.slice(0, -1) : line)
      if (event !== undefined) events.push(event)
    }
    return events
  }
  const emit = (events: Array<IngestEvent>) =>
    events.length === 0 ? Effect.void : events.length === 1 ? onEvent(events[0]!) : Effect.forEach(events, onEvent, { discard: true })
  return Stream.runForEach(stream, (bytes) => emit(eventsOf(decoder.write(bytes as Buffer), false))).pipe(
    Effect.andThen(Effect.suspend(() => emit(eventsOf(decoder.end(), true))))
  )
}

const parseChunkLine = (line: string): IngestEvent | undefined => {
  const [file, start, end] = line.split(",")
  if (file === undefined || !chunkFilePattern.test(file)) return undefined
  const startSeconds = Number(start)
  const endSeconds = Number(end)
  if (!Number.isFinite(startSeconds) || !Number.isFinite(endSeconds)) return undefined
  return { _tag: "Chunk", file, startSeconds, endSeconds }
}

/**
 * Runs ffmpeg until it exits, handing every event to `onEvent`. Interrupting
 * it (or closing the scope) kills the process group.
 */
export const run = (
  options: IngestRunOptions,
  onEvent: (event: IngestEvent) => Effect.Effect<void>
): Effect.Effect<IngestExit, PlatformError, Scope | ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const warm = yield* Effect.serviceOption(WarmFfmpeg)
    const ffmpegArgs = ingestArgs(options)
    // A waiting ffmpeg (libraries loaded, nice already set) when the node keeps some; else a new one.
    const waiting = Option.isSome(warm) ? yield* warm.value.start(options.dir, ffmpegArgs) : Option.none()
    const handle = Option.isSome(waiting) ? waiting.value : yield* Effect.gen(function*() {
      const [file, args] = command(options.ffmpegPath, ffmpegArgs)
      const spawned = yield* spawner.spawn(
        ChildProcess.make(file, args, {
          cwd: options.dir,
          stdin: "ignore",
          additionalFds: { fd3: { type: "output" } },
          killSignal: "SIGTERM",
          forceKillAfter: "1 second"
        })
      )
      // Below the node: a burst of ffmpeg start-ups (each costs ~0.15 s of CPU here, loading its
      // libraries) must not starve the node's lease renewals. Stream copy needs little CPU after.
      try {
        os.setPriority(Number(spawned.pid), ffmpegNiceness)
      } catch {
        // Gone already: its exit is reported below.
      }
      return spawned
    })

    const parseProgress = makeProgressParser()
    const progress = eachLine(handle.stdout, (line) => {
      const block = parseProgress(line)
      return block === undefined ? undefined : { _tag: "Progress", block }
    }, onEvent)
    const keyframes = KeyframeClock.make()
    const chunks = eachLine(handle.getOutputFd(3), parseChunkLine, (event) => {
      if (event._tag === "Chunk") keyframes.observe(event.endSeconds, event.endSeconds - event.startSeconds, Date.now())
      return onEvent(event)
    })
    let lastReason: string | undefined
    let sawStream = false
    const log = eachLine(handle.stderr, (line) => {
      if (!sawStream) {
        const info = parseStreamInfo(line)
        if (info !== undefined) {
          sawStream = true
          return { _tag: "StreamInfo", info }
        }
      }
      if (isReasonLine(line)) lastReason = cleanReason(line)
      return undefined
    }, onEvent)

    const readers = yield* Effect.forkScoped(
      Effect.all([progress, chunks, log], { concurrency: "unbounded", discard: true })
    )
    // A stop (the camera is disabled, moves, or the node shuts down) ends ffmpeg with SIGTERM (one
    // that moves the camera to another node a moment before its next keyframe: KeyframeClock) and
    // reads what it writes on its way out: it closes the chunk it was writing and lists it, so the
    // last second before a stop reaches the live playlist and the recorder instead of staying an
    // unlisted file. Finalizers run in reverse order, so this runs while the readers still read;
    // the spawner's own SIGTERM/SIGKILL of the group follows and finds it gone.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const leadMs = options.stopLeadMs?.()
        const delay = leadMs === undefined ? 0 : KeyframeClock.stopDelayMs(keyframes, Date.now(), leadMs, maxStopWaitMs)
        if (delay <= 0) return Effect.void
        return options.stopWaitEnds === undefined
          ? Effect.sleep(delay)
          : Effect.raceFirst(Effect.sleep(delay), options.stopWaitEnds)
      }).pipe(
        Effect.andThen(handle.kill({ killSignal: "SIGTERM", forceKillAfter: "1 second" })),
        Effect.ignore,
        Effect.andThen(Fiber.await(readers).pipe(Effect.timeout("1 second"), Effect.ignore))
      )
    )
    // Killed by a signal (the OOM killer, an operator's kill) there is no exit code: the
    // spawner fails, and the run ends as ffmpeg's own exit does, with the signal as its reason.
    // The signal's name is read from the spawner's message ("… receipt of signal: 'SIGKILL'",
    // @effect/platform-node-shared 4.x); another wording gives "a signal", and a test notices.
    let killedBy: string | undefined
    const exitCode = yield* handle.exitCode.pipe(
      Effect.map(Number),
      Effect.catch((error) => {
        killedBy = /signal: '(\w+)'/.exec(String((error.cause as Error | undefined)?.message))?.[1] ?? "a signal"
        return Effect.succeed(-1)
      })
    )
    // Let the readers drain what ffmpeg wrote before it exited (the last chunk line).
    yield* Fiber.await(readers).pipe(Effect.timeout("1 second"), Effect.ignore)
    return { exitCode, lastReason: killedBy === undefined ? lastReason : `ffmpeg was killed by ${killedBy}` }
  })
