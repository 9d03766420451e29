/**
 * `vms bench rpc` and `vms bench events`: the client API of a real node
 * (`vms start` as a child process, its own database) driven from this
 * process.
 *
 * - rpc: `get_camera_status` at a fixed number of concurrent calls (64 by
 *   default) through the typed client on `/rpc` and through a plain JSON-RPC
 *   client on `/ws`, against disabled cameras (the call goes through the
 *   camera's actor, no ffmpeg runs). Latency is per call, as the client sees
 *   it. Budget: p99 ≤ 5 ms on one node.
 * - events: N WebSocket clients (1,000 by default) on `/ws`, each subscribed
 *   to `camera_status_update`; a camera is switched off and on, and each
 *   notification's latency is its arrival here minus the status's
 *   `updatedAt` (set by the actor when the status changed: actor → bus →
 *   subscription → socket → client). Budget: p99 ≤ 20 ms.
 *
 * Both authenticate with an operator API token (hashed lookup, agency
 * check) created through REST while the fresh node is in setup mode.
 * Writes `<scenario>.json` and `<scenario>.md` into the results directory.
 */
import { NodeServices } from "@effect/platform-node"
import { Context, Effect, Layer, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type WebSocket from "ws"
import { VmsClient } from "../rpc/Client.ts"
import { CorkedWebSocket } from "../runtime/net/CorkedWebSocket.ts"
import { benchDatabaseUrl } from "./BenchDatabase.ts"
import { startNode } from "./NodeUnderTest.ts"
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

const fail = (reason: string) => new ApiBenchError({ reason })

const summary = (samples: Array<number>) => {
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

const rest = (base: string, method: string, route: string, body?: unknown, apiKey?: string) =>
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
const jsonRpcSocket = (url: string, apiKey: string, onNotification: (message: any, receivedAt: number) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly call: (method: string, params: unknown) => Promise<any>; readonly socket: WebSocket }, ApiBenchError>((resume) => {
      // Corked like the typed client's: requests issued in one turn leave in one write.
      const socket = new CorkedWebSocket(url, { headers: { "x-api-key": apiKey } })
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
const closedLoop = (concurrency: number, seconds: number, call: (index: number) => Effect.Effect<void, unknown>) =>
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

const writeResults = (resultsDir: string, name: string, result: Record<string, unknown>, markdown: string) =>
  Effect.promise(async () => {
    await fs.mkdir(resultsDir, { recursive: true })
    await fs.writeFile(path.join(resultsDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`)
    await fs.writeFile(path.join(resultsDir, `${name}.md`), markdown)
  })

const machine = () => `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.versions.node}`

export const runApiBench = Effect.fn("ApiBench.run")(function*(options: ApiBenchOptions) {
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

  if (options.scenario === "rpc") {
    const cameras = 20
    for (let i = 0; i < cameras; i++) {
      yield* rest(base, "POST", "/api/v1/cameras", { id: `bench-${i}`, name: `bench ${i}`, url: `rtsp://127.0.0.1:9/bench-${i}`, enabled: false }, apiKey)
    }
    const cameraId = (index: number) => `bench-${index % cameras}`

    // Each client is closed before the next starts and before the node stops.
    const typedSamples = yield* Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(VmsClient.layer(`${ws}/rpc`, { apiKey }))
      const typed = Context.get(context, VmsClient)
      const typedCall = (index: number) => typed.get_camera_status({ cameraId: cameraId(index) })
      yield* Effect.logInfo("warming up").pipe(Effect.annotateLogs({ seconds: options.warmupSeconds }))
      yield* closedLoop(options.concurrency, options.warmupSeconds, typedCall)
      return yield* closedLoop(options.concurrency, options.durationSeconds, typedCall)
    }))

    const jsonSamples = yield* Effect.scoped(Effect.gen(function*() {
      const socket = yield* jsonRpcSocket(`${ws}/ws`, apiKey, () => {})
      const jsonCall = (index: number) =>
        Effect.promise(() => socket.call("get_camera_status", { cameraId: cameraId(index) })).pipe(
          Effect.flatMap((reply) => reply.error === undefined ? Effect.void : Effect.fail(fail(JSON.stringify(reply.error))))
        )
      yield* closedLoop(options.concurrency, options.warmupSeconds, jsonCall)
      return yield* closedLoop(options.concurrency, options.durationSeconds, jsonCall)
    }))

    const typedSummary = { ...summary(typedSamples), callsPerSecond: Math.round(typedSamples.length / options.durationSeconds) }
    const jsonSummary = { ...summary(jsonSamples), callsPerSecond: Math.round(jsonSamples.length / options.durationSeconds) }
    const result = {
      scenario: "rpc",
      startedAt,
      machine: machine(),
      concurrency: options.concurrency,
      windowSeconds: options.durationSeconds,
      method: "get_camera_status",
      typedRpc: typedSummary,
      jsonRpc: jsonSummary,
      budgetP99Ms: 5,
      withinBudget: typedSummary.p99Ms <= 5 && jsonSummary.p99Ms <= 5
    }
    const row = (name: string, s: typeof typedSummary) =>
      `| ${name} | ${s.count} | ${s.callsPerSecond} | ${s.p50Ms} | ${s.p90Ms} | ${s.p99Ms} | ${s.maxMs} |`
    yield* writeResults(options.resultsDir, "rpc", result, [
      "# vms bench rpc",
      "",
      `${startedAt}, ${machine()}. \`get_camera_status\` on ${cameras} disabled cameras (through each camera's actor), ` +
      `${options.concurrency} concurrent calls for ${options.durationSeconds} s after ${options.warmupSeconds} s of warm-up, ` +
      "operator API token; node and client are separate processes on the same machine.",
      "",
      "| transport | calls | calls/s | p50 ms | p90 ms | p99 ms | max ms |",
      "|---|---|---|---|---|---|---|",
      row("typed client, /rpc", typedSummary),
      row("JSON-RPC 2.0, /ws", jsonSummary),
      "",
      `Budget p99 ≤ 5 ms: ${result.withinBudget ? "met" : "NOT met"}.`,
      ""
    ].join("\n"))
    yield* Effect.logInfo("rpc bench done").pipe(Effect.annotateLogs({ typed: typedSummary, jsonRpc: jsonSummary }))
    yield* node.stop
    return result
  }

  // events
  yield* rest(base, "POST", "/api/v1/cameras", { id: "bench-events", name: "events", url: "rtsp://127.0.0.1:9/events", enabled: false }, apiKey)
  const latencies: Array<number> = []
  let measuring = false
  const seen = new Set<string>()
  let received = 0
  const onNotification = (client: number) => (message: any, receivedAt: number) => {
    if (message.method !== "camera_status_update") return
    received++
    const key = `${client}:${message.params.status}:${message.params.updatedAt}`
    if (seen.has(key)) return
    seen.add(key)
    if (measuring) latencies.push(receivedAt - Date.parse(message.params.updatedAt))
  }
  // The clients are closed before the node stops.
  const cycles = yield* Effect.scoped(Effect.gen(function*() {
    yield* Effect.logInfo("connecting clients").pipe(Effect.annotateLogs({ clients: options.clients }))
    const sockets = yield* Effect.forEach(
      Array.from({ length: options.clients }, (_, client) => client),
      (client) => jsonRpcSocket(`${ws}/ws`, apiKey, onNotification(client)),
      { concurrency: 50 }
    )
    yield* Effect.forEach(sockets, (socket) =>
      Effect.promise(() => socket.call("subscribe", { events: ["camera_status_update"], cameraIds: ["bench-events"] })).pipe(
        Effect.flatMap((reply) => reply.error === undefined ? Effect.void : Effect.fail(fail(JSON.stringify(reply.error))))
      ), { concurrency: 50, discard: true })
    const toggle = (enabled: boolean) => rest(base, "PATCH", "/api/v1/cameras/bench-events", { enabled }, apiKey)
    const cycle = Effect.gen(function*() {
      yield* toggle(true)
      yield* Effect.sleep("700 millis")
      yield* toggle(false)
      yield* Effect.sleep("700 millis")
    })
    yield* Effect.logInfo("warming up")
    yield* cycle
    measuring = true
    const cycles = Math.max(1, Math.round(options.durationSeconds / 1.4))
    for (let i = 0; i < cycles; i++) yield* cycle
    measuring = false
    yield* Effect.sleep("500 millis")
    return cycles
  }))
  const events = summary(latencies)
  const result = {
    scenario: "events",
    startedAt,
    machine: machine(),
    clients: options.clients,
    cycles,
    notificationsReceived: received,
    latency: events,
    budgetP99Ms: 20,
    withinBudget: events.p99Ms <= 20 && events.count > 0
  }
  yield* writeResults(options.resultsDir, "events", result, [
    "# vms bench events",
    "",
    `${startedAt}, ${machine()}. ${options.clients} WebSocket clients on /ws (JSON-RPC 2.0), each subscribed to ` +
    `\`camera_status_update\` of one camera with an operator API token; the camera was switched on and off ${cycles} times ` +
    "(each switch is a status change in its actor). Latency = arrival at the client − the status's `updatedAt` " +
    "(actor → event bus → each subscription's filter → socket → client). The clients share one process, so its event loop's " +
    "queue is part of the figure.",
    "",
    "| notifications | p50 ms | p90 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    `| ${events.count} | ${events.p50Ms} | ${events.p90Ms} | ${events.p99Ms} | ${events.maxMs} |`,
    "",
    `Budget p99 ≤ 20 ms: ${result.withinBudget ? "met" : "NOT met"}.`,
    ""
  ].join("\n"))
  yield* Effect.logInfo("events bench done").pipe(Effect.annotateLogs({ latency: events }))
  yield* node.stop
  return result
})
