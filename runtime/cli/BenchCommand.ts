/**
 * `vms bench <scenario>`: runs a benchmark and writes its results (JSON and
 * Markdown) under `benchmarks/results/`. Scenarios live in `benchmarks/`.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { runApiBench } from "../../benchmarks/ApiBench.ts"
import { runFailoverBench } from "../../benchmarks/FailoverBench.ts"
import { runHandoverBench } from "../../benchmarks/HandoverBench.ts"
import { runIngestBench } from "../../benchmarks/IngestBench.ts"
import { runPlaybackBench } from "../../benchmarks/PlaybackBench.ts"
import { runQuotaBench } from "../../benchmarks/QuotaBench.ts"
import { runSimulatorBench } from "../../benchmarks/SimulatorBench.ts"
import * as Logging from "../logging/Logging.ts"
import { configFlags, decodeConfig } from "./ConfigFlags.ts"

const scenarios = ["simulator", "ingest", "rpc", "events", "failover", "handover", "playback", "quota"] as const

export const benchCommand = Command.make(
  "bench",
  {
    scenario: Argument.Literals("scenario", scenarios).pipe(Argument.withDescription(`one of: ${scenarios.join(", ")}`)),
    cameras: Flag.Int("cameras").pipe(
      Flag.withDescription("number of camera streams (default: simulator and ingest 100, failover and handover 30)"),
      Flag.optional
    ),
    duration: Flag.Int("duration").pipe(
      Flag.withDescription("measurement window in seconds (default: simulator 30, ingest 60, rpc 10, events 20)"),
      Flag.optional
    ),
    warmup: Flag.Int("warmup").pipe(
      Flag.withDescription("warm-up before measuring, in seconds (default: simulator 10, ingest 45, rpc 3, events 14)"),
      Flag.optional
    ),
    clients: Flag.Int("clients").pipe(Flag.withDescription("events: WebSocket clients subscribed (default 1000)"), Flag.withDefault(1000)),
    concurrency: Flag.Int("concurrency").pipe(
      Flag.withDescription("rpc: concurrent calls (default 64); quota: concurrent callers (default 256)"),
      Flag.optional
    ),
    kills: Flag.Int("kills").pipe(Flag.withDescription("failover: nodes killed, one after another (default 10)"), Flag.withDefault(10)),
    stops: Flag.Int("stops").pipe(Flag.withDescription("handover: nodes stopped with SIGTERM, one after another (default 10)"), Flag.withDefault(10)),
    resultsDir: Flag.String("results-dir").pipe(Flag.withDescription("where results are written (default benchmarks/results)"), Flag.withDefault("benchmarks/results")),
    dataDir: configFlags.dataDir,
    ffmpegPath: configFlags.ffmpegPath
  },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* decodeConfig({ dataDir: flags.dataDir, ffmpegPath: flags.ffmpegPath })
      const logging = Logging.layer(config.logLevel)
      const common = {
        ...Option.match(flags.cameras, { onNone: () => ({}), onSome: (cameras) => ({ cameras }) }),
        ...Option.match(flags.duration, { onNone: () => ({}), onSome: (durationSeconds) => ({ durationSeconds }) }),
        ...Option.match(flags.warmup, { onNone: () => ({}), onSome: (warmupSeconds) => ({ warmupSeconds }) }),
        dataDir: config.dataDir,
        ffmpegPath: config.ffmpegPath,
        resultsDir: flags.resultsDir
      }
      switch (flags.scenario) {
        case "simulator":
          return yield* runSimulatorBench(common).pipe(Effect.asVoid, Effect.provide(logging))
        case "ingest":
          return yield* runIngestBench(common).pipe(Effect.asVoid, Effect.provide(logging))
        case "failover":
          return yield* runFailoverBench({
            ...Option.match(flags.cameras, { onNone: () => ({}), onSome: (cameras) => ({ cameras }) }),
            kills: flags.kills,
            dataDir: config.dataDir,
            ffmpegPath: config.ffmpegPath,
            resultsDir: flags.resultsDir
          }).pipe(Effect.scoped, Effect.asVoid, Effect.provide(logging))
        case "handover":
          return yield* runHandoverBench({
            ...Option.match(flags.cameras, { onNone: () => ({}), onSome: (cameras) => ({ cameras }) }),
            stops: flags.stops,
            dataDir: config.dataDir,
            ffmpegPath: config.ffmpegPath,
            resultsDir: flags.resultsDir
          }).pipe(Effect.scoped, Effect.asVoid, Effect.provide(logging))
        case "playback":
          return yield* runPlaybackBench({
            dataDir: config.dataDir,
            ffmpegPath: config.ffmpegPath,
            resultsDir: flags.resultsDir
          }).pipe(Effect.asVoid, Effect.provide(logging))
        case "quota":
          return yield* runQuotaBench({
            concurrency: Option.getOrElse(flags.concurrency, () => 256),
            durationSeconds: Option.getOrElse(flags.duration, () => 10),
            warmupSeconds: Option.getOrElse(flags.warmup, () => 3),
            dataDir: config.dataDir,
            resultsDir: flags.resultsDir
          }).pipe(Effect.asVoid, Effect.provide(logging))
        case "rpc":
        case "events":
          return yield* runApiBench({
            scenario: flags.scenario,
            clients: flags.clients,
            concurrency: Option.getOrElse(flags.concurrency, () => 64),
            // events: 14 on/off cycles measured after 10 of warm-up (the fan-out runs a few times a second, so V8 needs cycles to compile it).
            durationSeconds: Option.getOrElse(flags.duration, () => flags.scenario === "events" ? 20 : 10),
            warmupSeconds: Option.getOrElse(flags.warmup, () => flags.scenario === "events" ? 14 : 3),
            dataDir: config.dataDir,
            ffmpegPath: config.ffmpegPath,
            resultsDir: flags.resultsDir
          }).pipe(Effect.scoped, Effect.asVoid, Effect.provide(logging))
      }
    })
).pipe(
  Command.withDescription("Run a benchmark scenario and write its results under benchmarks/results/"),
  Command.withExamples([
    { command: "vms bench simulator --cameras 100", description: "simulator CPU and memory per stream" },
    { command: "vms bench failover --kills 10", description: "time from killing a node to its cameras online on the survivors" },
    { command: "vms bench handover --stops 10", description: "live interruption of the cameras of a node stopped with SIGTERM" },
    { command: "vms bench ingest --cameras 50", description: "node and ffmpeg cost per live camera, stalled streams, snapshot latency" },
    { command: "vms bench rpc", description: "get_camera_status latency at 64 concurrent calls, typed /rpc and JSON-RPC /ws" },
    { command: "vms bench events --clients 1000", description: "status event fan-out latency to 1,000 WebSocket clients" },
    { command: "vms bench playback", description: "time to first byte of a 24 h playback playlist, speed of a 1 h MP4 export" },
    { command: "vms bench quota", description: "agency quota admissions per second, and over-admissions under contention" }
  ])
)
