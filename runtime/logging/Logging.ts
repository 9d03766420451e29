/**
 * Structured logging for the node: one JSON object per line (logfmt on an
 * interactive terminal), filtered by `VMS_LOG_LEVEL`. Actors annotate their
 * logs with their id (`Effect.annotateLogs`), so every line says who wrote it.
 */
import { Layer, Logger, type LogLevel, References } from "effect"

const levels: Record<string, LogLevel.LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None"
}

/** The node's logger: JSON lines unless stdout is a terminal. */
export const layer = (level: string, options?: { readonly pretty?: boolean }) =>
  Layer.mergeAll(
    Logger.layer([options?.pretty ?? process.stdout.isTTY === true ? Logger.consoleLogFmt : Logger.consoleJson]),
    Layer.succeed(References.MinimumLogLevel, levels[level] ?? "Info")
  )
