/**
 * Redis for tests: `VMS_TEST_REDIS_URL` when set, else the local server on
 * 127.0.0.1:6379 when it answers, else a throwaway `redis-server` on a free
 * port (a missing binary fails with the package to install). Tests keep
 * apart by key prefix (each uses its own cluster namespace).
 */
import { Effect, type Scope } from "effect"
import { spawn } from "node:child_process"
import * as net from "node:net"
import { freePort } from "../../runtime/net/FreePort.ts"
import { requireBinary } from "./Binaries.ts"
import { eventually } from "./Eventually.ts"

const answers = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(500, () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
    socket.once("error", () => done(false))
  })

/** A Redis URL for the test's scope. */
export const redisUrl: Effect.Effect<string, unknown, Scope.Scope> = Effect.gen(function*() {
  const configured = process.env.VMS_TEST_REDIS_URL
  if (configured !== undefined && configured !== "") return configured
  if (yield* answers(6379)) return "redis://127.0.0.1:6379"
  const binary = requireBinary("redis-server")
  const port = yield* freePort
  yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )
  yield* eventually("redis-server answers", Effect.map(answers(port), (ok) => ok ? true : undefined), 10_000, 50)
  return `redis://127.0.0.1:${port}`
})
