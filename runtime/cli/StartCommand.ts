/**
 * `vms start`: runs a node until SIGINT/SIGTERM, then closes every scope
 * (HTTP server, actors and their pipelines, database pool, embedded Postgres).
 */
import { Effect, Layer } from "effect"
import { Command } from "effect/cli"
import * as Logging from "../logging/Logging.ts"
import * as Node from "../Node.ts"
import { configFlags, decodeConfig } from "./ConfigFlags.ts"

export const startCommand = Command.make("start", configFlags, (flags) =>
  Effect.gen(function*() {
    const config = yield* decodeConfig(flags)
    return yield* Layer.launch(Node.layer(config)).pipe(
      Effect.onInterrupt(() => Effect.logInfo("node stopped")),
      Effect.provide(Logging.layer(config.logLevel))
    )
  })).pipe(
    Command.withDescription("Run a node (embedded defaults when nothing is configured)"),
    Command.withExamples([
      { command: "vms start", description: "one node with embedded Postgres and data under ./data" },
      { command: "VMS_HTTP_PORT=9000 vms start", description: "the same on port 9000" }
    ])
  )
