/**
 * NATS for tests: `VMS_TEST_NATS_URL` when set, else the local server on
 * 127.0.0.1:4222 when it answers, else a throwaway `nats-server -js` on a
 * free port (a missing binary fails with the package to install). Every test
 * uses a namespace of its own (`VMS_CLUSTER`), so tests share one server.
 *
 * `natsProxy` is a TCP proxy between one node and NATS that a test cuts to
 * partition that node, and restores to heal it.
 */
import { Effect, type Scope } from "effect"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { freePort } from "../../runtime/net/FreePort.ts"
import { requireBinary } from "./Binaries.ts"
import { eventually } from "./Eventually.ts"

const answers = (host: string, port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(500, () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("INFO")))
    socket.once("error", () => done(false))
  })

/** A NATS server URL for the test's scope. */
export const natsUrl: Effect.Effect<string, unknown, Scope.Scope> = Effect.gen(function*() {
  const configured = process.env.VMS_TEST_NATS_URL
  if (configured !== undefined && configured !== "") return configured
  if (yield* answers("127.0.0.1", 4222)) return "nats://127.0.0.1:4222"
  const binary = requireBinary("nats-server")
  const port = yield* freePort
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "vms-nats-"))),
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
  )
  yield* Effect.acquireRelease(
    Effect.sync(() => spawn(binary, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: "ignore" })),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )
  yield* eventually("nats-server answers", Effect.map(answers("127.0.0.1", port), (ok) => ok ? true : undefined), 10_000, 50)
  return `nats://127.0.0.1:${port}`
})

/** A cluster namespace no other test uses. */
export const testNamespace = () => `t${randomBytes(5).toString("hex")}`

export interface NatsProxy {
  /** `nats://127.0.0.1:<port>` of the proxy. */
  readonly url: string
  /** Drops every connection and refuses new ones (the node is cut off from NATS). */
  readonly cut: Effect.Effect<void>
  /** Accepts connections again. */
  readonly heal: Effect.Effect<void>
}

/** A TCP proxy to `upstream` (a `nats://host:port` URL), closed with the scope. */
export const natsProxy = (upstream: string): Effect.Effect<NatsProxy, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const target = new URL(upstream)
    const sockets = new Set<net.Socket>()
    let open = true
    const server = net.createServer((client) => {
      if (!open) return client.destroy()
      const server = net.connect({ host: target.hostname, port: Number(target.port || 4222) })
      sockets.add(client)
      sockets.add(server)
      const close = () => {
        client.destroy()
        server.destroy()
        sockets.delete(client)
        sockets.delete(server)
      }
      client.pipe(server).pipe(client)
      client.on("error", close).on("close", close)
      server.on("error", close).on("close", close)
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
      }),
      () =>
        Effect.sync(() => {
          for (const socket of sockets) socket.destroy()
          server.close()
        })
    )
    return {
      url: `nats://127.0.0.1:${port}`,
      cut: Effect.sync(() => {
        open = false
        for (const socket of sockets) socket.destroy()
        sockets.clear()
      }),
      heal: Effect.sync(() => {
        open = true
      })
    }
  })
