/**
 * `vms migrate`: applies pending schema migrations and exits (a no-op when
 * the schema is current). Uses the same database settings as `vms start`.
 */
import { Effect, Layer } from "effect"
import { Command } from "effect/cli"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"
import * as Database from "../database/Database.ts"
import { Readiness } from "../health/Readiness.ts"
import * as Logging from "../logging/Logging.ts"
import { configFlags, decodeConfig } from "./ConfigFlags.ts"

export const migrateCommand = Command.make("migrate", configFlags, (flags) =>
  Effect.gen(function*() {
    const config = yield* decodeConfig(flags)
    yield* Effect.logInfo("schema is up to date").pipe(
      Effect.provide(
        Database.layer.pipe(
          Layer.provide(DataDir.layer),
          Layer.provide([Layer.succeed(NodeConfig, config), Readiness.layer])
        )
      ),
      Effect.provide(Logging.layer(config.logLevel))
    )
  })).pipe(Command.withDescription("Apply pending database migrations and exit"))
