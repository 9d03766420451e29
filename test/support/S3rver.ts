/**
 * s3rver as a throwaway S3 for one test: its own directory, a free port,
 * run as a child process (with `--openssl-legacy-provider`, which its
 * paged listings need on Node 24) so a test can stop it and start it again
 * on the same port and directory to simulate an outage. The `VMS_S3_*`
 * variables for a node that stores there.
 */
import { Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { freePort } from "../../runtime/net/FreePort.ts"
import { eventually } from "./Eventually.ts"
import { nodeBinary, projectRoot } from "./NodeProcess.ts"
import { tempDir } from "./TestNode.ts"

const s3rverEntry = path.join(projectRoot, "node_modules/s3rver/bin/s3rver.js")

const listening = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

export interface TestS3 {
  readonly endpoint: string
  readonly bucket: string
  readonly directory: string
  /** `VMS_S3_*` for a node storing in this bucket. */
  readonly env: Record<string, string>
  /** Kills the server (connections refused until `start`). */
  readonly stop: Effect.Effect<void>
  readonly start: Effect.Effect<void, unknown>
}

export const startS3rver = (bucket = "vms-test"): Effect.Effect<TestS3, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const directory = yield* tempDir("s3rver")
    const port = yield* freePort
    let child: ChildProcess | undefined
    const stop = Effect.callback<void>((resume) => {
      const running = child
      child = undefined
      if (running === undefined || running.exitCode !== null) return resume(Effect.void)
      running.once("exit", () => resume(Effect.void))
      running.kill("SIGKILL")
    })
    const start = Effect.gen(function*() {
      child = spawn(nodeBinary, [
        s3rverEntry, "--directory", directory, "--address", "127.0.0.1", "--port", String(port),
        "--silent", "--configure-bucket", bucket
      ], { stdio: "ignore", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NODE_OPTIONS: "--openssl-legacy-provider" } })
      yield* eventually(`s3rver on port ${port}`, Effect.map(listening(port), (up) => (up ? true : undefined)), 15_000, 50)
    })
    yield* Effect.acquireRelease(start, () => stop)
    const endpoint = `http://127.0.0.1:${port}`
    return {
      endpoint,
      bucket,
      directory,
      env: {
        VMS_S3_ENDPOINT: endpoint,
        VMS_S3_BUCKET: bucket,
        VMS_S3_ACCESS_KEY_ID: "S3RVER",
        VMS_S3_SECRET_ACCESS_KEY: "S3RVER",
        VMS_S3_FORCE_PATH_STYLE: "true"
      },
      stop,
      start
    }
  })
