/**
 * `vms simulate`: serve N simulated RTSP cameras (`rtsp://HOST:PORT/cam0…`)
 * from one cached test clip until SIGINT/SIGTERM. The simulator itself is
 * `protocols/rtsp`; this is its command line.
 */
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { runSimulate } from "../../protocols/rtsp/SimulateCommand.ts"
import * as Logging from "../logging/Logging.ts"
import { configFlags, decodeConfig } from "./ConfigFlags.ts"

export const simulateCommand = Command.make(
  "simulate",
  {
    cameras: Flag.Int("cameras").pipe(Flag.withDescription("number of cameras, mounts cam0 … camN-1 (default 10)"), Flag.withDefault(10)),
    port: Flag.Int("port").pipe(Flag.withDescription("RTSP port, 0 picks a free one (default 8554)"), Flag.withDefault(8554)),
    host: Flag.String("host").pipe(Flag.withDescription("address to listen on (default 127.0.0.1)"), Flag.withDefault("127.0.0.1")),
    controlPort: Flag.Int("control-port").pipe(
      Flag.withDescription("HTTP fault-control port: GET /stats, POST /faults/{mount}/{drop|hang|refuse|resume}, POST /listener/{refuse|resume}"),
      Flag.optional
    ),
    dataDir: configFlags.dataDir,
    ffmpegPath: configFlags.ffmpegPath
  },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* decodeConfig({ dataDir: flags.dataDir, ffmpegPath: flags.ffmpegPath })
      return yield* runSimulate({
        cameras: flags.cameras,
        port: flags.port,
        host: flags.host,
        dataDir: config.dataDir,
        ffmpegPath: config.ffmpegPath,
        ...(Option.isSome(flags.controlPort) ? { controlPort: flags.controlPort.value } : {})
      }).pipe(Effect.provide(Logging.layer(config.logLevel)))
    })
).pipe(
  Command.withDescription("Serve simulated RTSP cameras from one cached 720p15 H.264 test clip"),
  Command.withExamples([
    { command: "vms simulate --cameras 100 --port 8554", description: "rtsp://127.0.0.1:8554/cam0 … cam99" },
    { command: "vms simulate --cameras 4 --control-port 8555", description: "with the fault-control endpoint" }
  ])
)
