/**
 * Runs `vms` as a real child process for whole-node tests: captures its
 * output, finds the HTTP address it logs, and kills it with the scope if a
 * test left it running. The child gets a clean environment: only PATH/HOME
 * and the `VMS_*` variables the test passes.
 */
import { Deferred, Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"

export const projectRoot = path.resolve(import.meta.dirname, "../..")
export const nodeBinary = path.join(projectRoot, "node_modules/.bin/node")
const vmsEntry = path.join(projectRoot, "runtime/bin/vms.ts")

export interface VmsProcess {
  readonly child: ChildProcess
  readonly output: () => string
  readonly stderr: () => string
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Effect.Effect<number | string>
  /** The `http://host:port` the node logged, once it listens. */
  readonly httpUrl: Effect.Effect<string>
}

const cleanEnv = (env: Record<string, string>) => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: process.env.HOME ?? "/root",
  ...env
})

/** `vms <args>` as a child process. */
export const spawnVms = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawnCommand(nodeBinary, [vmsEntry, ...args], env)

/**
 * `npm start` as a user runs it: in a process group of its own, so a test can
 * signal the whole group the way a terminal's Ctrl-C does.
 */
export const spawnNpmStart = (env: Record<string, string> = {}) =>
  spawnCommand("npm", ["start", "--silent"], env, { detached: true })

const spawnCommand = (
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { readonly detached?: boolean } = {}
): Effect.Effect<VmsProcess, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exitedSignal = yield* Deferred.make<number | string>()
    const urlSignal = yield* Deferred.make<string>()
    let stdout = ""
    let stderr = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(command, args, {
          cwd: projectRoot,
          env: cleanEnv(env),
          stdio: ["ignore", "pipe", "pipe"],
          detached: options.detached ?? false
        })
      ),
      (child) =>
        Effect.sync(() => {
          if (child.exitCode !== null || child.signalCode !== null) return
          if (options.detached === true && child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
          else child.kill("SIGKILL")
        })
    )
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      const match = /"message":"HTTP server listening".*?"url":"(http:\/\/[^"]+)"/.exec(stdout)
      if (match) Deferred.doneUnsafe(urlSignal, Effect.succeed(match[1]!))
    })
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.once("exit", (code, signal) => Deferred.doneUnsafe(exitedSignal, Effect.succeed(code ?? signal ?? "unknown")))
    return {
      child,
      output: () => stdout + stderr,
      stderr: () => stderr,
      exited: Deferred.await(exitedSignal),
      httpUrl: Deferred.await(urlSignal)
    }
  })

/** Every process whose command line mentions `needle` (e.g. a data dir). */
export const processesMentioning = (needle: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.promise(async () => {
    const fs = await import("node:fs/promises")
    const found: Array<string> = []
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
      const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")
      if (cmdline.includes(needle)) found.push(`${entry}: ${cmdline.replaceAll("\0", " ").trim()}`)
    }
    return found
  })
