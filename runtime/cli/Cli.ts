/**
 * The `vms` command line: the root command, its subcommands, and how a run
 * ends (exit 0 on success or Ctrl-C, 2 with one line on bad configuration,
 * 1 with the logged cause otherwise).
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { Command } from "effect/cli"
import { ConfigInvalid } from "../config/NodeConfig.ts"
import { nodeVersion } from "../metrics/Metrics.ts"
import { benchCommand } from "./BenchCommand.ts"
import { migrateCommand } from "./MigrateCommand.ts"
import { simulateCommand } from "./SimulateCommand.ts"
import { startCommand } from "./StartCommand.ts"
import { tokenCommand } from "./TokenCommand.ts"

export const vms = Command.make("vms").pipe(
  Command.withDescription("Actor-based distributed video management runtime"),
  Command.withSubcommands([startCommand, migrateCommand, simulateCommand, benchCommand, tokenCommand])
)

const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return 0
  return Cause.squash(exit.cause) instanceof ConfigInvalid ? 2 : 1
}

/**
 * Ctrl-C reaches a node twice under `npm start` (the terminal signals the
 * whole process group and npm forwards it again). The first signal starts the
 * graceful shutdown (NodeRuntime interrupts the main fiber); repeats within a
 * second are that same Ctrl-C and are ignored, so Node's default handler can
 * never kill the node mid-shutdown; a later one forces the exit.
 */
const guardSignals = () => {
  let firstAt: number | undefined
  const onSignal = () => {
    const now = Date.now()
    if (firstAt === undefined) firstAt = now
    else if (now - firstAt > 1000) {
      process.stderr.write("vms: forced exit\n")
      process.exit(130)
    }
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
}

/** Runs the CLI as the process's main program. */
export const main = () => {
  guardSignals()
  return Command.run(vms, { version: nodeVersion }).pipe(
    Effect.tapCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.void
      const error = Cause.squash(cause)
      if (error instanceof ConfigInvalid) {
        return Effect.sync(() => process.stderr.write(`vms: invalid configuration: ${error.message}\n`))
      }
      // Expected failures (a typed error with a message) get one line; defects get the whole cause.
      if (Cause.hasFails(cause) && error instanceof Error && "_tag" in error) {
        const detail = error.message || (error.cause instanceof Error ? error.cause.message : String(error.cause ?? ""))
        return Effect.sync(() => process.stderr.write(`vms: ${String(error._tag)}: ${detail}\n`))
      }
      return Effect.logError("vms failed", cause)
    }),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      teardown: (exit, onExit) => onExit(exitCode(exit))
    })
  )
}
