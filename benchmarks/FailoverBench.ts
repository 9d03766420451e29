/**
 * `vms bench failover`: how long a camera is down when its node dies. Runs
 * the simulator and three nodes as processes (cluster mode: the local NATS
 * and Postgres), registers the cameras, then repeatedly SIGKILLs the node
 * owning the most cameras and times, for each of its cameras, the moment a
 * survivor reports it `online` again (the owner's `updatedAt` on the
 * `camera_status_update` event, pushed over JSON-RPC to a WebSocket on every
 * node), from the kill. The killed node is restarted and the cluster left to
 * rebalance before the next kill. Writes `failover.json` and `failover.md`.
 */
import { DateTime, Effect, Exit, FileSystem, Path, Schema, Scope } from "effect"
import { randomBytes } from "node:crypto"
import WebSocket from "ws"
import * as TestClip from "../protocols/rtsp/TestClip.ts"
import { ffmpegVersion, machineFacts } from "./BenchMachine.ts"
import { benchDatabaseUrl } from "./BenchDatabase.ts"
import { type FailoverResults, type FailoverRun, toMarkdown } from "./FailoverBenchReport.ts"
import * as NodeUnderTest from "./NodeUnderTest.ts"
import { percentile } from "./Stats.ts"

export class FailoverBenchOptions extends Schema.Class<FailoverBenchOptions>("vms/benchmarks/FailoverBenchOptions")({
  cameras: Schema.Int.check(Schema.isBetween({ minimum: 3, maximum: 300 })).pipe(Schema.withDecodingDefaultKey(Effect.succeed(30))),
  kills: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })).pipe(Schema.withDecodingDefaultKey(Effect.succeed(10))),
  dataDir: Schema.String,
  ffmpegPath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("ffmpeg"))),
  resultsDir: Schema.String,
  natsUrl: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.env.VMS_NATS_URL ?? "nats://127.0.0.1:4222"))),
  redisUrl: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.env.VMS_REDIS_URL ?? "redis://127.0.0.1:6379"))),
  nodePath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.execPath)))
}) {}

export class FailoverBenchError extends Schema.TaggedError<FailoverBenchError>()("FailoverBenchError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

interface StatusEvent {
  readonly cameraId: string
  readonly status: string
  readonly nodeId: string
  readonly updatedAt: string
}

const nodeIds = ["f1", "f2", "f3"] as const

/** Kill → each survivor's "runner died" log line (its proof of the death), from the node's JSON logs. */
const diedLogged = (lines: ReadonlyArray<string>, killedAt: number): Array<number> =>
  lines.flatMap((line) => {
    if (!line.includes("runner died")) return []
    try {
      const at = Date.parse((JSON.parse(line) as { timestamp: string }).timestamp)
      return at >= killedAt ? [at - killedAt] : []
    } catch {
      return []
    }
  })
/** A camera not back within this long counts as not recovered. */
const giveUpMs = 30_000

/** Subscribes to camera status events of the node at `baseUrl` over JSON-RPC; closed with the scope. */
const subscribeEvents = (baseUrl: string, onEvent: (event: StatusEvent) => void) =>
  Effect.acquireRelease(
    Effect.callback<WebSocket, FailoverBenchError>((resume) => {
      const socket = new WebSocket(`${baseUrl.replace("http", "ws")}/ws`)
      socket.on("open", () => {
        socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "subscribe", params: { events: ["camera_status_update"] } }))
      })
      socket.on("message", (data) => {
        const message = JSON.parse(data.toString()) as { id?: number; method?: string; params?: StatusEvent; error?: unknown }
        if (message.id === 1) {
          if (message.error !== undefined) resume(Effect.fail(new FailoverBenchError({ reason: `subscribe: ${JSON.stringify(message.error)}` })))
          else resume(Effect.succeed(socket))
        } else if (message.method === "camera_status_update" && message.params !== undefined) {
          onEvent(message.params)
        }
      })
      socket.on("error", (error) => resume(Effect.fail(new FailoverBenchError({ reason: `events of ${baseUrl}: ${error.message}` }))))
    }),
    (socket) => Effect.sync(() => socket.terminate())
  )

export const runFailoverBench = Effect.fn("FailoverBench.run")(function*(input: typeof FailoverBenchOptions.Encoded) {
  const options = yield* Schema.decodeUnknownEffect(FailoverBenchOptions)(input).pipe(
    Effect.mapError((error) => new FailoverBenchError({ reason: error.message }))
  )
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failure = (cause: unknown) => new FailoverBenchError({ reason: String(cause) })
  const startedAt = DateTime.formatIso(yield* DateTime.now)
  yield* TestClip.load({ dataDir: options.dataDir, ffmpegPath: options.ffmpegPath })
  const ffmpeg = yield* ffmpegVersion(options.ffmpegPath).pipe(Effect.mapError(failure))
  const databaseUrl = yield* benchDatabaseUrl
  if (databaseUrl === undefined) {
    return yield* new FailoverBenchError({ reason: "cluster mode needs a shared Postgres: none answers on 127.0.0.1:5432" })
  }
  const namespace = `bench${randomBytes(4).toString("hex")}`
  const simulator = yield* NodeUnderTest.startSimulator({ ...options })

  const events: Array<StatusEvent & { readonly receivedAt: number }> = []
  const start = (id: string) =>
    Effect.gen(function*() {
      const dataDir = yield* fs.makeTempDirectoryScoped({ prefix: `vms-bench-failover-${id}-` }).pipe(Effect.mapError(failure))
      yield* fs.chmod(dataDir, 0o755).pipe(Effect.mapError(failure))
      const node = yield* NodeUnderTest.startNode({
        nodePath: options.nodePath,
        dataDir,
        ffmpegPath: options.ffmpegPath,
        databaseUrl,
        readyTimeoutSeconds: 60,
        env: { VMS_NATS_URL: options.natsUrl, VMS_REDIS_URL: options.redisUrl, VMS_CLUSTER: namespace, VMS_NODE_ID: id, VMS_LOG_LEVEL: "warn" }
      })
      yield* subscribeEvents(node.baseUrl, (event) => events.push({ ...event, receivedAt: Date.now() }))
      return node
    })

  const nodes = new Map<string, { readonly node: NodeUnderTest.NodeProcess; readonly close: Effect.Effect<void> }>()
  const launch = (id: string) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const node = yield* start(id).pipe(Scope.provide(scope))
      nodes.set(id, { node, close: Scope.close(scope, Exit.void) })
    })
  yield* Effect.forEach(nodeIds, launch, { concurrency: "unbounded", discard: true })
  yield* Effect.addFinalizer(() => Effect.forEach([...nodes.values()], (n) => n.close, { discard: true }))
  const any = () => [...nodes.values()][0]!.node.baseUrl
  const cameraIds = Array.from({ length: options.cameras }, (_, i) => `cam${i}`)
  yield* Effect.forEach(cameraIds, (id, index) =>
    NodeUnderTest.addCamera(any(), { id, name: id, url: simulator.url(index) }), { concurrency: 8, discard: true })

  /** Waits until every camera is online on a live node; answers each camera's owner. */
  const settled = (timeoutMs: number) =>
    Effect.gen(function*() {
      const deadline = Date.now() + timeoutMs
      while (true) {
        const statuses = yield* Effect.forEach(cameraIds, (id) => NodeUnderTest.cameraStatus(any(), id), { concurrency: 8 })
        if (statuses.every((s) => s.status === "online" && nodes.has(s.nodeId))) {
          return new Map(statuses.map((s) => [s.cameraId, s.nodeId]))
        }
        if (Date.now() > deadline) {
          const down = statuses.filter((s) => s.status !== "online").map((s) => `${s.cameraId}:${s.status}`)
          return yield* new FailoverBenchError({ reason: `cameras not online after ${timeoutMs} ms: ${down.join(", ")}` })
        }
        yield* Effect.sleep("250 millis")
      }
    })

  const runs: Array<FailoverRun> = []
  for (let kill = 1; kill <= options.kills; kill++) {
    const owners = yield* settled(60_000)
    // Let a rebalance after the last restart finish moving cameras before measuring.
    yield* Effect.sleep("3 seconds")
    const stable = yield* settled(30_000)
    const counts = new Map<string, number>()
    for (const owner of stable.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1)
    const [victim] = [...counts].sort((a, b) => b[1] - a[1])[0]!
    const moved = [...stable].filter(([, owner]) => owner === victim).map(([cameraId]) => cameraId)
    const { node } = nodes.get(victim)!
    const killedAt = Date.now()
    process.kill(node.pid, "SIGKILL")
    yield* nodes.get(victim)!.close
    nodes.delete(victim)
    // Each moved camera: first `connecting` (its pipeline starts) and first `online` from a survivor after the kill.
    const downMs = new Map<string, number>()
    const connectingMs = new Map<string, number>()
    while (downMs.size < moved.length && Date.now() - killedAt < giveUpMs) {
      for (const event of events) {
        if (event.nodeId === victim || !moved.includes(event.cameraId)) continue
        const at = Date.parse(event.updatedAt)
        if (at < killedAt) continue
        const seen = event.status === "online" ? downMs : event.status === "connecting" ? connectingMs : undefined
        if (seen !== undefined && !seen.has(event.cameraId)) seen.set(event.cameraId, at - killedAt)
      }
      yield* Effect.sleep("50 millis")
    }
    const times = moved.map((id) => downMs.get(id) ?? Infinity)
    const startedMs = moved.flatMap((id) => connectingMs.get(id) ?? [])
    const startToOnlineMs = moved.flatMap((id) => {
      const started = connectingMs.get(id)
      const online = downMs.get(id)
      return started === undefined || online === undefined ? [] : [online - started]
    })
    const detectedMs = [...nodes.values()].flatMap(({ node }) => diedLogged(node.logLines(), killedAt))
    // What the survivors warned about meanwhile (they log at warn): the first place to look at an outlier.
    for (const [id, { node }] of nodes) {
      const warnings = node.logLines().filter((line) => line.startsWith("{") && !line.includes("runner died") && Date.parse(/"timestamp":"([^"]+)"/.exec(line)?.[1] ?? "") >= killedAt)
      if (warnings.length > 0) yield* Effect.logInfo("survivor warnings").pipe(Effect.annotateLogs({ kill, node: id, lines: warnings.slice(0, 20).join("\n") }))
    }
    runs.push({
      kill,
      node: victim,
      cameras: moved.length,
      camerasBefore: owners.size,
      recoveredMs: times.filter(Number.isFinite),
      notRecovered: times.filter((t) => !Number.isFinite(t)).length,
      detectedMs: detectedMs.length === 0 ? null : Math.min(...detectedMs),
      startedMs,
      startToOnlineMs
    })
    yield* Effect.logInfo("kill measured").pipe(Effect.annotateLogs({
      kill, node: victim, cameras: moved.length, p50Ms: percentile(times, 50), maxMs: percentile(times, 100)
    }))
    yield* launch(victim)
  }

  const all = runs.flatMap((run) => run.recoveredMs)
  const notRecovered = runs.reduce((sum, run) => sum + run.notRecovered, 0)
  const result = {
    startedAt,
    cameras: options.cameras,
    nodes: nodeIds.length,
    kills: runs.length,
    samples: all.length,
    notRecovered,
    recoveryMs: { p50: percentile(all, 50), p95: percentile(all, 95), p99: notRecovered > 0 ? null : percentile(all, 99), max: notRecovered > 0 ? null : percentile(all, 100) },
    budgetMs: 5_000,
    goalMs: 3_000,
    pass: notRecovered === 0 && percentile(all, 99) <= 5_000,
    runs,
    machine: machineFacts(ffmpeg)
  } satisfies FailoverResults
  yield* fs.makeDirectory(options.resultsDir, { recursive: true }).pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "failover.json"), JSON.stringify(result, null, 2) + "\n").pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "failover.md"), toMarkdown(result)).pipe(Effect.mapError(failure))
  yield* Effect.logInfo("failover benchmark done").pipe(Effect.annotateLogs({ ...result.recoveryMs, pass: result.pass }))
  return result
})
