/**
 * `vms bench rpc` and `vms bench events`: the client API of a real node
 * (`vms start` as a child process, its own database) driven from this
 * process.
 *
 * - rpc: `get_camera_status` at a fixed number of concurrent calls (64 by
 *   default, a closed loop) through the typed client on `/rpc` and through a
 *   plain JSON-RPC client on `/ws`, against disabled cameras (no ffmpeg
 *   runs; the status comes from the node's status view, which the actors'
 *   events keep current). Latency is per call, as the client sees it; the
 *   node's, the client's and the machine's CPU over the window are reported
 *   beside it. Budget: p99 ≤ 5 ms on one node.
 * - events: N WebSocket clients (1,000 by default) on `/ws`, each subscribed
 *   to `camera_status_update`; a camera is switched off and on, and each
 *   notification's latency is its arrival here minus the status's
 *   `updatedAt` (set by the actor when the status changed: actor → bus →
 *   subscription → socket → client), after at least three warm-up cycles,
 *   with each event's spread over the clients. Budget: p99 ≤ 20 ms.
 *
 * Both authenticate with an operator API token (hashed lookup, agency
 * check) created through REST while the fresh node is in setup mode.
 * After the node stops, each runs its floor (`WsRpcFloor.ts`,
 * `WsFanoutFloor.ts`: the same traffic against a plain `ws` server with no
 * application code) and reports it beside the node's figures, measured in
 * the same minute on the same machine.
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
import { runFloor } from "./FloorRuns.ts"
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

export interface WindowCpu {
  /** Percent of one core, over the measurement window. */
  readonly nodePercent: number
  readonly clientPercent: number
  /** All cores together (up to 100 × cores): what is neither node nor client is other processes. */
  readonly machinePercent: number
}

/** Runs `effect` and answers how busy the node, this process and the machine were meanwhile. */
const measuringCpu = <A, E>(nodePid: number, effect: Effect.Effect<A, E>) =>
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

const cpuText = (cpu: WindowCpu) =>
  `node ${cpu.nodePercent} %, client ${cpu.clientPercent} %, machine ${cpu.machinePercent} % of one core`

/** `closedLoop` for a promise-returning call. */
const promiseLoop = async (concurrency: number, seconds: number, call: (index: number) => Promise<void>) => {
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
    const [typedSamples, typedCpu] = yield* Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(VmsClient.layer(`${ws}/rpc`, { apiKey }))
      const typed = Context.get(context, VmsClient)
      const typedCall = (index: number) => typed.get_camera_status({ cameraId: cameraId(index) })
      yield* Effect.logInfo("warming up").pipe(Effect.annotateLogs({ seconds: options.warmupSeconds }))
      yield* closedLoop(options.concurrency, options.warmupSeconds, typedCall)
      return yield* measuringCpu(node.pid, closedLoop(options.concurrency, options.durationSeconds, typedCall))
    }))

    // The plain client's loop is plain promises: an Effect per call would be
    // client CPU on the machine the node runs on, and part of the figure.
    const [jsonSamples, jsonCpu] = yield* Effect.scoped(Effect.gen(function*() {
      const socket = yield* jsonRpcSocket(`${ws}/ws`, apiKey, () => {})
      const jsonLoop = (seconds: number) =>
        Effect.tryPromise({
          try: () => promiseLoop(options.concurrency, seconds, async (index) => {
            const reply = await socket.call("get_camera_status", { cameraId: cameraId(index) })
            if (reply.error !== undefined) throw new Error(JSON.stringify(reply.error))
          }),
          catch: (cause) => fail(String(cause))
        })
      yield* jsonLoop(options.warmupSeconds)
      return yield* measuringCpu(node.pid, jsonLoop(options.durationSeconds))
    }))

    yield* node.stop
    // The machine's floor in the same minute: the same loop against a plain ws server with no application code.
    const floor = yield* runFloor("WsRpcFloor.ts", [
      "--concurrency", String(options.concurrency),
      "--duration", String(options.durationSeconds),
      "--warmup", String(options.warmupSeconds)
    ]).pipe(Effect.mapError((error) => fail(error.reason)))
    const typedSummary = {
      ...summary(typedSamples),
      callsPerSecond: Math.round(typedSamples.length / options.durationSeconds),
      cpu: typedCpu
    }
    const jsonSummary = {
      ...summary(jsonSamples),
      callsPerSecond: Math.round(jsonSamples.length / options.durationSeconds),
      cpu: jsonCpu
    }
    const result = {
      scenario: "rpc",
      startedAt,
      machine: machine(),
      concurrency: options.concurrency,
      windowSeconds: options.durationSeconds,
      method: "get_camera_status",
      typedRpc: typedSummary,
      jsonRpc: jsonSummary,
      plainWsFloor: floor,
      budgetP99Ms: 5,
      withinBudget: typedSummary.p99Ms <= 5 && jsonSummary.p99Ms <= 5
    }
    const row = (name: string, s: typeof typedSummary) =>
      `| ${name} | ${s.count} | ${s.callsPerSecond} | ${s.p50Ms} | ${s.p90Ms} | ${s.p99Ms} | ${s.maxMs} | ` +
      `${s.cpu.nodePercent} | ${s.cpu.clientPercent} | ${s.cpu.machinePercent} |`
    yield* writeResults(options.resultsDir, "rpc", result, [
      "# vms bench rpc",
      "",
      `${startedAt}, ${machine()}. \`get_camera_status\` on ${cameras} disabled cameras, ` +
      `${options.concurrency} concurrent calls (a closed loop: each of ${options.concurrency} callers sends its next call ` +
      `when the last is answered) for ${options.durationSeconds} s after ${options.warmupSeconds} s of warm-up, ` +
      "operator API token (authenticated, rate-limited and agency-checked on every call). The status comes from the " +
      "node's status view (fed by the actors' status events; the camera's actor is asked when an entry is older than 1 s). " +
      "Latency is per call as the client sees it. Node and client are separate processes sharing the machine's cores; " +
      "CPU columns are percent of one core over the window (machine: all cores together, so what is neither node nor " +
      "client is other processes).",
      "",
      "| transport | calls | calls/s | p50 ms | p90 ms | p99 ms | max ms | node CPU % | client CPU % | machine CPU % |",
      "|---|---|---|---|---|---|---|---|---|---|",
      row("typed client, /rpc", typedSummary),
      row("JSON-RPC 2.0, /ws", jsonSummary),
      `| floor: plain \`ws\` echo, no application code | ${floor.calls} | ${floor.callsPerSecond} | ${floor.p50Ms} | ` +
      `${floor.p90Ms} | ${floor.p99Ms} | ${floor.maxMs} | | | |`,
      "",
      "The floor row is `benchmarks/WsRpcFloor.ts`, run right after the node stopped: the same closed loop of JSON-RPC " +
      "frames over one loopback WebSocket against a plain `ws` server in a child process that parses each request and " +
      "answers a status-sized result at once (no Effect, auth, schema or metrics): what Node, ws and the kernel cost " +
      "per call on this machine in the same minute.",
      "",
      `Budget p99 ≤ 5 ms: ${result.withinBudget ? "met" : "NOT met"}.`,
      ""
    ].join("\n"))
    yield* Effect.logInfo("rpc bench done").pipe(Effect.annotateLogs({ typed: typedSummary, jsonRpc: jsonSummary, floor }))
    return result
  }

  // events
  yield* rest(base, "POST", "/api/v1/cameras", { id: "bench-events", name: "events", url: "rtsp://127.0.0.1:9/events", enabled: false }, apiKey)
  const latencies: Array<number> = []
  /** Per measured event (status and updatedAt): each client's latency. */
  const byEvent = new Map<string, Array<number>>()
  let measuring = false
  let received = 0
  const onNotification = () => {
    // A client counts each status once (the node sends it once; this guards the figure, not the node).
    let last = ""
    return (message: any, receivedAt: number) => {
      if (message.method !== "camera_status_update") return
      received++
      const key = `${message.params.status}@${message.params.updatedAt}`
      if (key === last) return
      last = key
      if (!measuring) return
      const latency = receivedAt - Date.parse(message.params.updatedAt)
      latencies.push(latency)
      const samples = byEvent.get(key)
      if (samples === undefined) byEvent.set(key, [latency])
      else samples.push(latency)
    }
  }
  // The clients are closed before the node stops.
  const [cycles, cpu] = yield* Effect.scoped(Effect.gen(function*() {
    yield* Effect.logInfo("connecting clients").pipe(Effect.annotateLogs({ clients: options.clients }))
    const sockets = yield* Effect.forEach(
      Array.from({ length: options.clients }, (_, client) => client),
      () => jsonRpcSocket(`${ws}/ws`, apiKey, onNotification()),
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
    // At least three cycles: the first events after start run cold code (V8 compiles the fan-out and socket paths).
    const warmupCycles = Math.max(3, Math.round(options.warmupSeconds / 1.4))
    yield* Effect.logInfo("warming up").pipe(Effect.annotateLogs({ cycles: warmupCycles }))
    for (let i = 0; i < warmupCycles; i++) yield* cycle
    const cycles = Math.max(1, Math.round(options.durationSeconds / 1.4))
    const [, cpu] = yield* measuringCpu(node.pid, Effect.gen(function*() {
      measuring = true
      for (let i = 0; i < cycles; i++) yield* cycle
      measuring = false
      yield* Effect.sleep("500 millis")
    }))
    return [cycles, cpu] as const
  }))
  yield* node.stop
  // The machine's floor in the same minute: one frame to as many plain ws clients from a plain ws server.
  const floor = yield* runFloor("WsFanoutFloor.ts", ["--clients", String(options.clients), "--processes", "1", "--rounds", "30"]).pipe(
    Effect.mapError((error) => fail(error.reason))
  )
  const perEvent = [...byEvent].map(([event, samples]) => {
    const { count, p50Ms, maxMs } = summary(samples)
    return { event, clients: count, firstMs: samples[0] ?? 0, p50Ms, lastMs: maxMs }
  })
  const events = summary(latencies)
  const result = {
    scenario: "events",
    startedAt,
    machine: machine(),
    clients: options.clients,
    cycles,
    notificationsReceived: received,
    latency: events,
    perEvent,
    cpu,
    plainWsFloor: floor,
    budgetP99Ms: 20,
    withinBudget: events.p99Ms <= 20 && events.count > 0
  }
  yield* writeResults(options.resultsDir, "events", result, [
    "# vms bench events",
    "",
    `${startedAt}, ${machine()}. ${options.clients} WebSocket clients on /ws (JSON-RPC 2.0), each subscribed to ` +
    `\`camera_status_update\` of one camera with an operator API token; the camera was switched on and off ${cycles} times ` +
    "(each switch is a status change in its actor). Latency = arrival at the client − the status's `updatedAt` " +
    "(actor → event bus → each subscription's filter → socket → client), measured after " +
    `${Math.max(3, Math.round(options.warmupSeconds / 1.4))} warm-up cycles. The clients share one process, so its event loop's ` +
    "queue is part of the figure. Each notification is one WebSocket frame, one TCP write per client (the node builds " +
    "the frame once per event and writes the same buffer to every socket).",
    "",
    "| notifications | p50 ms | p90 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    `| ${events.count} | ${events.p50Ms} | ${events.p90Ms} | ${events.p99Ms} | ${events.maxMs} |`,
    "",
    `CPU over the measured cycles: ${cpuText(cpu)}.`,
    "",
    `Floor, measured right after the node stopped (\`benchmarks/WsFanoutFloor.ts\`): a plain \`ws\` server with no ` +
    `application code sending one frame of the same size to ${floor.clients} plain \`ws\` clients in one client process ` +
    `(30 rounds, 3 of warm-up): the send loop alone takes ${floor.sendLoopMs.p50} ms (median), and arrivals are ` +
    `p50 ${floor.arrivalMs.p50} ms, p90 ${floor.arrivalMs.p90} ms, **p99 ${floor.arrivalMs.p99} ms**, max ${floor.arrivalMs.max} ms ` +
    "after the loop started.",
    "",
    "Per event (first, median and last of the clients):",
    "",
    "| event | clients | first ms | p50 ms | last ms |",
    "|---|---|---|---|---|",
    ...perEvent.map((e) => `| ${e.event} | ${e.clients} | ${e.firstMs} | ${e.p50Ms} | ${e.lastMs} |`),
    "",
    `Budget p99 ≤ 20 ms: ${result.withinBudget ? "met" : "NOT met"}.`,
    ""
  ].join("\n"))
  yield* Effect.logInfo("events bench done").pipe(Effect.annotateLogs({ latency: events, floor }))
  return result
})
