/**
 * Ingest ffmpegs started ahead of need. Starting ffmpeg costs 110-160 ms of
 * CPU before it sends its first RTSP request (Debian's build loads ~200
 * libraries; the dynamic linker is half of it), and 400-650 ms of wall time
 * when a node starts several at once on a busy machine: exactly when cameras
 * move to it from a node that stops. A node keeps a few ffmpegs started and
 * held before their main by the warm-start shim (`warm-start.c`, LD_PRELOAD);
 * a camera takes one and sends it its arguments, and ffmpeg connects to the
 * camera within a few milliseconds. The pool refills only after a quiet
 * moment (2 s without takes), one process every 0.2 s behind the spawn
 * pacer, so refilling never competes with the cameras it just sped up, and a
 * pool emptied by a move is full again ~5 s later (a rolling restart stops
 * the next node about that soon after the previous one is back).
 *
 * A waiting process has no camera and pulls nothing; it dies with its node
 * (the shim sets PR_SET_PDEATHSIG), and with the pool. An ffmpeg that does
 * not wait (a static build ignores LD_PRELOAD and runs its placeholder
 * `-version`) turns the pool off: every ffmpeg then starts cold, as it would
 * with no C compiler on the machine or `VMS_FFMPEG_WARM=0`.
 */
import { Context, Effect, Exit, Fiber, Layer, Option, Scope, Stream } from "effect"
import type { PlatformError } from "effect/PlatformError"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as os from "node:os"
import * as path from "node:path"
import client from "prom-client"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"
import { Metrics } from "../metrics/Metrics.ts"
import { ffmpegNiceness, SpawnPacer } from "./SpawnPacer.ts"
import * as WarmStartShim from "./WarmStartShim.ts"

export interface WarmFfmpegOptions {
  readonly ffmpegPath: string
  /** The scheduling priority (nice) of the processes, set as they start: their start-up is not the node's. */
  readonly niceness: number
  /** Processes kept waiting; 0 turns warm starts off. */
  readonly size: number
  /** Where the shim is built (once per version of its source). */
  readonly shimDir: string
  /** Written into a waiting process's command line (the node's data dir), so process scans find it. */
  readonly label: string
  /** After a process is taken, the pool waits this long without takes before it refills. */
  readonly refillAfterMs?: number
  /** Before the first process (the node's own cameras start cold meanwhile); `refillAfterMs` when unset. */
  readonly firstFillAfterMs?: number
  /** Between two refills. */
  readonly spacingMs?: number
}

/** Room for the real arguments in the process's original argument area (see `warm-start.c`). */
const argumentRoom = 8_192

/**
 * What a waiting process is told: its working directory, then its arguments,
 * each NUL-terminated; undefined when one holds a NUL (it could not be told,
 * and starts cold).
 */
const startMessage = (cwd: string, args: ReadonlyArray<string>): Uint8Array | undefined => {
  const parts = [cwd, ...args]
  if (parts.some((part) => part.includes("\0"))) return undefined
  return new TextEncoder().encode(parts.map((part) => `${part}\0`).join(""))
}

interface Waiting {
  readonly handle: ChildProcessSpawner.ChildProcessHandle
  /** Owns the process: closing it kills the process group. */
  readonly scope: Scope.Closeable
  watcher: Fiber.Fiber<void> | undefined
}

export class WarmFfmpeg extends Context.Service<WarmFfmpeg, {
  /**
   * A waiting ffmpeg, started now with `args` in `cwd` and owned by the
   * caller's scope from here on (its stdout, stderr and fd 3 are pipes, as
   * IngestProcess spawns them); none when no process is waiting (start one cold).
   */
  readonly start: (
    cwd: string,
    args: ReadonlyArray<string>
  ) => Effect.Effect<Option.Option<ChildProcessSpawner.ChildProcessHandle>, never, Scope.Scope>
  /** Processes waiting now. */
  readonly idle: Effect.Effect<number>
  /** False once warm starts are off: size 0, no C compiler, or an ffmpeg that does not wait under the shim. */
  readonly enabled: Effect.Effect<boolean>
}>()("vms/runtime/ffmpeg/WarmFfmpeg") {
  static readonly make = (options: WarmFfmpegOptions) =>
    Layer.effect(
      WarmFfmpeg,
      Effect.gen(function*() {
        const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
        const pacer = yield* SpawnPacer
        const { registry } = yield* Metrics
        const refillAfterMs = options.refillAfterMs ?? 2_000
        const spacingMs = options.spacingMs ?? 200
        const waiting: Array<Waiting> = []
        let quietUntil = Date.now() + (options.firstFillAfterMs ?? refillAfterMs)
        let enabled = options.size > 0
        let exitedWhileWaiting = 0

        new client.Gauge({
          name: "vms_ffmpeg_warm_idle",
          help: "ffmpeg processes started ahead and waiting for a camera",
          registers: [registry],
          collect() {
            this.set(waiting.length)
          }
        })
        const starts = new client.Counter({
          name: "vms_ffmpeg_starts_total",
          help: "Ingest ffmpeg starts, warm (a waiting process) or cold (spawned then)",
          labelNames: ["start"] as const,
          registers: [registry]
        })

        const discard = (entry: Waiting) =>
          Effect.andThen(
            entry.watcher === undefined ? Effect.void : Fiber.interrupt(entry.watcher),
            Scope.close(entry.scope, Exit.void)
          )

        const spawnOne = (shim: string): Effect.Effect<void, PlatformError> =>
          Effect.gen(function*() {
            const scope = yield* Scope.make()
            const handle = yield* spawner.spawn(
              ChildProcess.make(options.ffmpegPath, ["-version", `vms-warm-start ${options.label}`.padEnd(argumentRoom)], {
                cwd: os.tmpdir(),
                stdin: "pipe",
                additionalFds: { fd3: { type: "output" } },
                env: {
                  LD_PRELOAD: [shim, process.env.LD_PRELOAD].filter((part) => part !== undefined && part !== "").join(":"),
                  VMS_WARM_PARENT: String(process.pid)
                },
                extendEnv: true,
                killSignal: "SIGTERM",
                forceKillAfter: "1 second"
              })
            ).pipe(Scope.provide(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
            try {
              os.setPriority(Number(handle.pid), options.niceness)
            } catch {
              // Gone already: the watcher below notices.
            }
            const entry: Waiting = { handle, scope, watcher: undefined }
            // Turned off while this one started.
            if (!enabled) return yield* discard(entry)
            waiting.push(entry)
            // A process that exits while waiting never waited: the shim did not hold it.
            entry.watcher = yield* Effect.forkDetach(Effect.gen(function*() {
              yield* handle.exitCode.pipe(Effect.ignore)
              const at = waiting.indexOf(entry)
              if (at === -1) return
              waiting.splice(at, 1)
              entry.watcher = undefined
              yield* discard(entry)
              exitedWhileWaiting++
              if (exitedWhileWaiting >= 3 && enabled) {
                enabled = false
                yield* Effect.forEach(waiting.splice(0), discard, { concurrency: "unbounded", discard: true })
                yield* Effect.logWarning("ffmpeg does not wait under the warm-start shim; ffmpeg processes start cold").pipe(
                  Effect.annotateLogs({ ffmpeg: options.ffmpegPath })
                )
              }
            }))
          })

        const refill = Effect.gen(function*() {
          const shim = yield* WarmStartShim.build(options.shimDir)
          if (Option.isNone(shim)) {
            enabled = false
            return
          }
          while (enabled) {
            yield* Effect.sleep(spacingMs)
            if (waiting.length >= options.size || Date.now() < quietUntil) continue
            yield* pacer.pace
            yield* spawnOne(shim.value).pipe(
              Effect.catch((error) =>
                Effect.logWarning("could not start a waiting ffmpeg").pipe(Effect.annotateLogs({ error: error.message }))
              )
            )
          }
        }).pipe(Effect.annotateLogs({ service: "WarmFfmpeg" }))
        const refiller = enabled ? yield* Effect.forkDetach(refill) : undefined
        // The refiller first: it would replace the processes as they go. Then all of them at once.
        yield* Effect.addFinalizer(() =>
          Effect.andThen(
            refiller === undefined ? Effect.void : Fiber.interrupt(refiller),
            Effect.forEach(waiting.splice(0), discard, { concurrency: "unbounded", discard: true })
          )
        )

        const start = (cwd: string, args: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            const message = startMessage(cwd, args)
            const entry = message === undefined ? undefined : waiting.shift()
            if (entry === undefined || message === undefined) {
              starts.inc({ start: "cold" })
              return Option.none<ChildProcessSpawner.ChildProcessHandle>()
            }
            quietUntil = Date.now() + refillAfterMs
            if (entry.watcher !== undefined) yield* Fiber.interrupt(entry.watcher)
            entry.watcher = undefined
            yield* Effect.addFinalizer(() => discard(entry))
            const sent = yield* Stream.run(Stream.make(message), entry.handle.stdin).pipe(Effect.exit)
            if (Exit.isFailure(sent)) {
              yield* discard(entry)
              starts.inc({ start: "cold" })
              return Option.none<ChildProcessSpawner.ChildProcessHandle>()
            }
            starts.inc({ start: "warm" })
            return Option.some(entry.handle)
          })

        return WarmFfmpeg.of({ start, idle: Effect.sync(() => waiting.length), enabled: Effect.sync(() => enabled) })
      })
    )

  /** The node's pool: `VMS_FFMPEG_WARM` processes, the shim built under `<data>/bin`. */
  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    const config = yield* NodeConfig
    const dataDir = yield* DataDir
    return WarmFfmpeg.make({
      ffmpegPath: config.ffmpegPath,
      niceness: ffmpegNiceness,
      size: config.ffmpegWarm,
      shimDir: path.join(dataDir.path, "bin"),
      label: dataDir.path
    })
  }))
}
