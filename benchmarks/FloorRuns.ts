/**
 * Runs one of the floor measurements (`WsRpcFloor.ts`, `WsFanoutFloor.ts`:
 * the same traffic against a plain `ws` server with no application code) as
 * a child process, so a bench can report the machine's floor measured in
 * the same minute as its own figures. Answers the script's JSON line.
 */
import { Effect, Schema } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

export class FloorRunError extends Schema.TaggedError<FloorRunError>()("FloorRunError", { reason: Schema.String }) {}

const run = promisify(execFile)

export const runFloor = (script: "WsRpcFloor.ts" | "WsFanoutFloor.ts", args: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const { stdout } = await run(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], {
        maxBuffer: 16 * 1024 * 1024,
        timeout: 5 * 60_000
      })
      const lines = stdout.trim().split("\n")
      return JSON.parse(lines[lines.length - 1]!) as Record<string, any>
    },
    catch: (cause) => new FloorRunError({ reason: `${script}: ${String(cause)}` })
  })
