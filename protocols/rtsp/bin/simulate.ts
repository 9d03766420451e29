/**
 * Standalone simulator process (used by `benchmarks/SimulatorBench.ts` so the
 * simulator's CPU and memory can be measured alone):
 *
 *   node protocols/rtsp/bin/simulate.ts --cameras 100 --port 8554 [--host 127.0.0.1]
 *     [--data-dir ./data] [--ffmpeg ffmpeg] [--control-port 8555]
 *
 * `--data-dir` and `--ffmpeg` default to VMS_DATA_DIR and VMS_FFMPEG_PATH.
 */
import { parseArgs } from "node:util"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { runSimulate } from "../SimulateCommand.ts"

const { values } = parseArgs({
  options: {
    cameras: { type: "string", default: "10" },
    port: { type: "string", default: "8554" },
    host: { type: "string", default: "127.0.0.1" },
    "data-dir": { type: "string", default: process.env["VMS_DATA_DIR"] ?? "./data" },
    ffmpeg: { type: "string", default: process.env["VMS_FFMPEG_PATH"] ?? "ffmpeg" },
    "control-port": { type: "string" }
  }
})

runSimulate({
  cameras: Number(values.cameras),
  port: Number(values.port),
  host: values.host,
  dataDir: values["data-dir"],
  ffmpegPath: values.ffmpeg,
  ...(values["control-port"] === undefined ? {} : { controlPort: Number(values["control-port"]) })
}).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
