/**
 * `vms bench simulator`: how much CPU and memory the RTSP camera simulator
 * needs per stream. Starts the simulator as a separate process (so only its
 * own usage is measured), pulls every mount with one `ffmpeg -c copy` RTSP/TCP
 * client, and after a warm-up samples the simulator process from /proc over a
 * window while checking that every client keeps receiving at ~15 fps. Writes
 * `simulator.json` and `simulator.md` into the results directory.
 */
import { fileURLToPath } from "node:url"
import { DateTime, Effect, FileSystem, Path, Schedule, Schema } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as TestClip from "../protocols/rtsp/TestClip.ts"
import { clipFacts, ffmpegVersion, machineFacts } from "./BenchMachine.ts"
import { freePort } from "../runtime/net/FreePort.ts"
import { pull, type PullProgress } from "../protocols/rtsp/testing/FfmpegPull.ts"
import { clockTicksPerSecond, cpuPercent, type ProcessSample, sampleProcess } from "./ProcessSampler.ts"
import { SimulatorBenchResult, toMarkdown } from "./SimulatorBenchReport.ts"
import { median } from "./Stats.ts"

export class SimulatorBenchOptions extends Schema.Class<SimulatorBenchOptions>("vms/benchmarks/SimulatorBenchOptions")({
  cameras: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2000 })).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(100))
  ),
  /** Measurement window. */
  durationSeconds: Schema.Int.check(Schema.isGreaterThanOrEqualTo(5)).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(30))
  ),
  warmupSeconds: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(10))
  ),
  dataDir: Schema.String,
  ffmpegPath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("ffmpeg"))),
  resultsDir: Schema.String,
  /** Node binary for the simulator process; the current one by default. */
  nodePath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.execPath))),
  /** Delay between client starts. */
  staggerMs: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(50)))
}) {}

export class SimulatorBenchError extends Schema.TaggedError<SimulatorBenchError>()("SimulatorBenchError", {
  reason: Schema.String
}) {}

const BudgetPercentPerStream = 0.3
const StalledBelowFps = 14
/** The simulator runs as `vms simulate` in a process of its own, so only its usage is measured. */
const vmsEntry = fileURLToPath(new URL("../runtime/bin/vms.ts", import.meta.url))

const fetchStats = (controlPort: number) =>
  Effect.tryPromise({
    try: () =>
      fetch(`http://127.0.0.1:${controlPort}/stats`).then((response) =>
        response.json() as Promise<{ framesDropped: number; bytesSent: number }>
      ),
    catch: (cause) => new SimulatorBenchError({ reason: `simulator stats: ${String(cause)}` })
  })

const megabytes = (bytes: number) => bytes / (1024 * 1024)

export const runSimulatorBench = Effect.fn("SimulatorBench.run")(function*(input: typeof SimulatorBenchOptions.Encoded) {
  const options = yield* Schema.decodeUnknownEffect(SimulatorBenchOptions)(input).pipe(
    Effect.mapError((error) => new SimulatorBenchError({ reason: error.message }))
  )
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const startedAt = DateTime.formatIso(yield* DateTime.now)
  const benchFailure = (cause: unknown) => new SimulatorBenchError({ reason: String(cause) })

  // Encode/load the clip here, so the simulator process only reads the cache.
  const clip = yield* TestClip.load({ dataDir: options.dataDir, ffmpegPath: options.ffmpegPath })
  const ticksPerSecond = yield* clockTicksPerSecond
  const ffmpeg = yield* ffmpegVersion(options.ffmpegPath).pipe(Effect.mapError(benchFailure))
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const port = yield* freePort.pipe(Effect.mapError(benchFailure))
  const controlPort = yield* freePort.pipe(Effect.mapError(benchFailure))

  const simulator = yield* spawner.spawn(ChildProcess.make(options.nodePath, [
    vmsEntry,
    "simulate",
    "--cameras", `${options.cameras}`,
    "--port", `${port}`,
    "--control-port", `${controlPort}`,
    "--data-dir", options.dataDir,
    "--ffmpeg-path", options.ffmpegPath,
    "--log-level", "warn"
  ], { stdin: "ignore", stdout: "ignore", stderr: "inherit" })).pipe(Effect.mapError(benchFailure))
  const pid = simulator.pid as number
  yield* Effect.logInfo("simulator process started").pipe(Effect.annotateLogs({ pid, port, controlPort }))
  yield* fetchStats(controlPort).pipe(
    Effect.retry({ schedule: Schedule.spaced("100 millis") }),
    Effect.timeoutOrElse({
      duration: "60 seconds",
      orElse: () => Effect.fail(new SimulatorBenchError({ reason: "simulator did not become ready in 60 s" }))
    })
  )

  // Idle baseline: the clock runs, nobody is connected.
  const idleFrom = yield* sampleProcess(pid)
  yield* Effect.sleep("5 seconds")
  const idleTo = yield* sampleProcess(pid)

  const progress: Array<PullProgress | undefined> = Array.from({ length: options.cameras }, () => undefined)
  yield* Effect.logInfo("starting clients").pipe(Effect.annotateLogs({ clients: options.cameras }))
  for (let index = 0; index < options.cameras; index++) {
    yield* Effect.forkScoped(pull({
      url: `rtsp://127.0.0.1:${port}/cam${index}`,
      transport: "tcp",
      mode: "copy",
      ffmpegPath: options.ffmpegPath,
      socketTimeoutMicros: 10_000_000,
      onProgress: (p) => progress[index] = p
    }))
    yield* Effect.sleep(options.staggerMs)
  }
  const allReceiving = Effect.suspend(() =>
    progress.every((p) => p !== undefined && p.frames > 0)
      ? Effect.void
      : Effect.fail(new SimulatorBenchError({ reason: "not every client is receiving" }))
  )
  yield* allReceiving.pipe(
    Effect.retry({ schedule: Schedule.spaced("250 millis"), times: 240 }),
    Effect.catch(() => Effect.logWarning("some clients never received a frame"))
  )
  yield* Effect.logInfo("warming up").pipe(Effect.annotateLogs({ seconds: options.warmupSeconds }))
  yield* Effect.sleep(`${options.warmupSeconds} seconds`)

  const statsFrom = yield* fetchStats(controlPort)
  const clientsFrom = [...progress]
  const from = yield* sampleProcess(pid)
  const rssSamples: Array<ProcessSample> = []
  yield* Effect.logInfo("measuring").pipe(Effect.annotateLogs({ seconds: options.durationSeconds }))
  for (let second = 0; second < options.durationSeconds; second++) {
    yield* Effect.sleep("1 second")
    rssSamples.push(yield* sampleProcess(pid))
  }
  const to = rssSamples[rssSamples.length - 1]!
  const clientsTo = [...progress]
  const statsTo = yield* fetchStats(controlPort)

  const fps = clientsTo.map((end, index) => {
    const start = clientsFrom[index]
    if (end === undefined || start === undefined || end.atMs <= start.atMs) return 0
    return (end.frames - start.frames) / ((end.atMs - start.atMs) / 1000)
  })
  const cpu = cpuPercent(from, to, ticksPerSecond)
  const idleCpu = cpuPercent(idleFrom, idleTo, ticksPerSecond)
  const windowSeconds = (to.atMs - from.atMs) / 1000
  const result: SimulatorBenchResult = {
    scenario: "simulator",
    startedAt,
    cameras: options.cameras,
    warmupSeconds: options.warmupSeconds,
    windowSeconds,
    simulator: {
      cpuPercentOfOneCore: cpu,
      cpuPercentPerStream: cpu / options.cameras,
      marginalCpuPercentPerStream: Math.max(0, cpu - idleCpu) / options.cameras,
      idleCpuPercentOfOneCore: idleCpu,
      rssMegabytes: megabytes(rssSamples.reduce((sum, s) => sum + s.rssBytes, 0) / rssSamples.length),
      rssMaxMegabytes: megabytes(Math.max(...rssSamples.map((s) => s.rssBytes))),
      idleRssMegabytes: megabytes(idleTo.rssBytes),
      sentMegabitsPerSecond: ((statsTo.bytesSent - statsFrom.bytesSent) * 8) / windowSeconds / 1e6,
      framesDropped: statsTo.framesDropped
    },
    clients: {
      kind: "ffmpeg -c copy",
      receiving: fps.filter((value) => value > 0).length,
      stalled: fps.filter((value) => value < StalledBelowFps).length,
      fpsMin: Math.min(...fps),
      fpsMedian: median(fps),
      fpsMax: Math.max(...fps)
    },
    budget: {
      cpuPercentPerStream: BudgetPercentPerStream,
      pass: cpu / options.cameras <= BudgetPercentPerStream && fps.every((value) => value >= StalledBelowFps)
    },
    machine: machineFacts(ffmpeg),
    clip: { ...clipFacts(clip), gopFrames: clip.gopFrames }
  }

  const json = yield* Schema.encodeEffect(SimulatorBenchResult)(result).pipe(Effect.mapError(benchFailure))
  yield* fs.makeDirectory(options.resultsDir, { recursive: true }).pipe(Effect.mapError(benchFailure))
  yield* fs.writeFileString(path.join(options.resultsDir, "simulator.json"), JSON.stringify(json, null, 2) + "\n")
    .pipe(Effect.mapError(benchFailure))
  yield* fs.writeFileString(path.join(options.resultsDir, "simulator.md"), toMarkdown(result))
    .pipe(Effect.mapError(benchFailure))
  yield* Effect.logInfo("simulator benchmark done").pipe(Effect.annotateLogs({
    cpuPercentOfOneCore: cpu.toFixed(2),
    cpuPercentPerStream: (cpu / options.cameras).toFixed(3),
    rssMegabytes: result.simulator.rssMegabytes.toFixed(1),
    fpsMin: result.clients.fpsMin.toFixed(2),
    pass: result.budget.pass
  }))
  return result
}, Effect.scoped)
