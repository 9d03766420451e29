/**
 * What `vms bench rpc` (`RpcBench.ts`) and `vms bench events`
 * (`EventsBench.ts`) share: the node under test with its API token, a plain
 * JSON-RPC client, closed loops, CPU over a window, latency summaries and
 * the results files.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type WebSocket from "ws"
import { CorkedWebSocket } from "../runtime/net/CorkedWebSocket.ts"
import { benchDatabaseUrl } from "./BenchDatabase.ts"
import { startNode } from "./NodeUnderTest.ts"
import { clockTicksPerSecond, cpuPercent, machineBusyPercent, sampleMachine, sampleProcess } from "./ProcessSampler.ts"
import { percentile } from "./Stats.ts"

export class ApiBenchError extends Schema.TaggedError<ApiBenchError>()("ApiBenchError", { reason: Schema.String }) {}

export interface ApiBenchOptions {
  readonly scenario: "rpc" | "events"
  readonly clients: number
  readonly concurrency: number
  readonly durationSeconds: number
  readonly warmupSeconds: number
  readonly dataDir: string
  readonly ffmpegPath: string
  readonly resultsDir: string
}

export const fail = (reason: string) => new ApiBenchError({ reason })

export const summary = (samples: Array<number>) => {
  const sorted = samples.sort((a, b) => a - b)
  const round = (ms: number) => Math.round(ms * 1000) / 1000
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted[sorted.length - 1] ?? 0)
  }
}

export const rest = (base: string, method: string, route: string, body?: unknown, apiKey?: string) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(`${base}${route}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(apiKey === undefined ? {} : { "x-api-key": apiKey })
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const text = await response.text()
      if (response.status >= 300) throw new Error(`${method} ${route}: HTTP ${response.status} ${text}`)
      return text === "" ? undefined : JSON.parse(text)
    },
    catch: (cause) => fail(String(cause))
  })

/** A plain JSON-RPC client on `/ws`: calls by id, notifications to `onNotification`. */
export const jsonRpcSocket = (url: string, apiKey: string, onNotification: (message: any, receivedAt: number) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly call: (method: string, params: unknown) => Promise<any>; readonly socket: WebSocket }, ApiBenchError>((resume) => {
      // Corked like the typed client's: requests issued in one turn leave in one write.
      const socket = new CorkedWebSocket(url, { headers: { "x-api-key": apiKey }, skipUTF8Validation: true })
      const pending = new Map<number, (message: any) => void>()
      let nextId = 0
      socket.on("message", (data) => {
        const receivedAt = Date.now()
        const message = JSON.parse(data.toString())
        if (message.id !== undefined && message.id !== null) {
          pending.get(message.id)?.(message)
          pending.delete(message.id)
        } else if (message.method !== undefined) onNotification(message, receivedAt)
      })
      const call = (method: string, params: unknown) =>
        new Promise<any>((resolve) => {
          const id = nextId++
          pending.set(id, resolve)
          socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }))
        })
      socket.once("open", () => resume(Effect.succeed({ call, socket })))
      socket.once("error", (error) => resume(Effect.fail(fail(`ws: ${error.message}`))))
    }),
    ({ socket }) => Effect.sync(() => socket.terminate())
  )

/** Runs `call` from `concurrency` fibers for `seconds`; answers each call's latency (ms). */
export const closedLoop = (concurrency: number, seconds: number, call: (index: number) => Effect.Effect<void, unknown>) =>
  Effect.gen(function*() {
    const samples: Array<number> = []
    const until = Date.now() + seconds * 1000
    yield* Effect.forEach(Array.from({ length: concurrency }, (_, worker) => worker), (worker) =>
      Effect.gen(function*() {
        let index = worker
        while (Date.now() < until) {
          const started = performance.now()
          yield* call(index)
          samples.push(performance.now() - started)
          index += concurrency
        }
      }), { concurrency: "unbounded", discard: true })
    return samples
  })

export interface WindowCpu {
  /** Percent of one core, over the measurement window. */
  readonly nodePercent: number
  readonly clientPercent: number
  /** All cores together (up to 100 × cores): what is neither node nor client is other processes. */
  readonly machinePercent: number
}

/** Runs `effect` and answers how busy the node, this process and the machine were meanwhile. */
export const measuringCpu = <A, E>(nodePid: number, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const ticks = yield* clockTicksPerSecond.pipe(Effect.provide(NodeServices.layer))
    const sample = Effect.all({ node: sampleProcess(nodePid), client: sampleProcess(process.pid), machine: sampleMachine() }).pipe(
      Effect.provide(NodeServices.layer),
      Effect.mapError((error) => fail(error.reason))
    )
    const before = yield* sample
    const result = yield* effect
    const after = yield* sample
    const round = (percent: number) => Math.round(percent)
    const cpu: WindowCpu = {
      nodePercent: round(cpuPercent(before.node, after.node, ticks)),
      clientPercent: round(cpuPercent(before.client, after.client, ticks)),
      machinePercent: round(machineBusyPercent(before.machine, after.machine, ticks))
    }
    return [result, cpu] as const
  })

export const cpuText = (cpu: WindowCpu) =>
  `node ${cpu.nodePercent} %, client ${cpu.clientPercent} %, machine ${cpu.machinePercent} % of one core`

/** `closedLoop` for a promise-returning call. */
export const promiseLoop = async (concurrency: number, seconds: number, call: (index: number) => Promise<void>) => {
  const samples: Array<number> = []
  const until = Date.now() + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    for (let index = worker; Date.now() < until; index += concurrency) {
      const started = performance.now()
      await call(index)
      samples.push(performance.now() - started)
    }
  }))
  return samples
}

export const writeResults = (resultsDir: string, name: string, result: Record<string, unknown>, markdown: string) =>
  Effect.promise(async () => {
    await fs.mkdir(resultsDir, { recursive: true })
    await fs.writeFile(path.join(resultsDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`)
    await fs.writeFile(path.join(resultsDir, `${name}.md`), markdown)
  })

export const machine = () => `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.versions.node}`

/** A fresh node (`vms start`, its own data dir and database) and an operator API token for it. */
export const startApiNode = Effect.fn("ApiBench.startNode")(function*(options: ApiBenchOptions) {
  const startedAt = new Date().toISOString()
  const databaseUrl = yield* benchDatabaseUrl.pipe(Effect.mapError((error) => fail(error.reason)))
  const dataDir = yield* Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "vms-bench-api-"))),
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
  )
  yield* Effect.promise(() => fs.chmod(dataDir, 0o755))
  const node = yield* startNode({
    nodePath: process.execPath,
    dataDir,
    ffmpegPath: options.ffmpegPath,
    databaseUrl,
    readyTimeoutSeconds: 120
  }).pipe(Effect.provide(NodeServices.layer), Effect.mapError((error) => fail(error.reason)))
  const base = node.baseUrl
  const ws = base.replace(/^http/, "ws")
  // Setup mode (fresh node, loopback): the token we create ends it.
  const token = yield* rest(base, "POST", "/api/v1/tokens", {
    name: "bench",
    role: "operator",
    agencyId: "default",
    rateLimitPerMinute: 1_000_000
  })
  const apiKey: string = token.token
  return { startedAt, node, base, ws, apiKey }
})
