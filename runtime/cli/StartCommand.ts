/**
 * `vms start`: runs a node until SIGINT/SIGTERM, then closes every scope
 * (HTTP server, actors and their pipelines, database pool, embedded Postgres).
 */
import { Effect, Layer, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as Logging from "../logging/Logging.ts"
import * as Node from "../Node.ts"
import { configFlags, decodeConfig } from "./ConfigFlags.ts"

export class DemoInvalid extends Schema.TaggedError<DemoInvalid>()("DemoInvalid", {
  message: Schema.String
}) {}

const startFlags = {
  ...configFlags,
  demo: Flag.Int("demo").pipe(
    Flag.withDescription("also run an RTSP camera simulator in this process with N cameras, registered as demo-0 … demo-N-1"),
    Flag.optional
  )
}

export const startCommand = Command.make("start", startFlags, ({ demo, ...flags }) =>
  Effect.gen(function*() {
    const config = yield* decodeConfig(flags)
    return yield* Effect.gen(function*() {
      const demoCameras = Option.getOrUndefined(demo)
      if (demoCameras !== undefined && (demoCameras < 1 || demoCameras > 1000)) {
        return yield* new DemoInvalid({ message: `--demo: expected 1 to 1000 cameras, got ${demoCameras}` })
      }
      return yield* Layer.launch(Node.layer(config, { demoCameras }))
    }).pipe(
      Effect.onInterrupt(() => Effect.logInfo("node stopped")),
      Effect.provide(Logging.layer(config.logLevel))
    )
  })).pipe(
    Command.withDescription("Run a node (embedded defaults when nothing is configured)"),
    Command.withExamples([
      { command: "vms start", description: "one node with embedded Postgres and data under ./data" },
      { command: "VMS_HTTP_PORT=9000 vms start", description: "the same on port 9000" },
      { command: "vms start --demo 4", description: "with 4 simulated cameras, live at once" }
    ])
  )
