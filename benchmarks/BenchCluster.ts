/**
 * A cluster for the benchmarks that move cameras between nodes (failover,
 * handover): the simulator and three nodes as processes in cluster mode on
 * the local NATS and Postgres, a WebSocket on every node collecting the
 * camera status events, and the cameras registered. Nodes can be taken out
 * (the caller kills or stops the process) and launched again.
 */
import { Effect, Exit, FileSystem, Schema, Scope } from "effect"
import { randomBytes } from "node:crypto"
import WebSocket from "ws"
import * as TestClip from "../protocols/rtsp/TestClip.ts"
import { ffmpegVersion } from "./BenchMachine.ts"
import { benchDatabaseUrl } from "./BenchDatabase.ts"
import * as NodeUnderTest from "./NodeUnderTest.ts"

export class BenchClusterError extends Schema.TaggedError<BenchClusterError>()("BenchClusterError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/**
 * The options every cluster benchmark takes besides its own: where the clip
 * and results go, ffmpeg, the NATS and Redis the nodes share, and the Node
 * binary that runs them.
 */
export const clusterBenchFields = {
  cameras: Schema.Int.check(Schema.isBetween({ minimum: 3, maximum: 300 })).pipe(Schema.withDecodingDefaultKey(Effect.succeed(30))),
  dataDir: Schema.String,
  ffmpegPath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("ffmpeg"))),
  resultsDir: Schema.String,
  natsUrl: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.env.VMS_NATS_URL ?? "nats://127.0.0.1:4222"))),
  redisUrl: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.env.VMS_REDIS_URL ?? "redis://127.0.0.1:6379"))),
  nodePath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.execPath)))
}

export interface StatusEvent {
  readonly cameraId: string
  readonly status: string
  readonly nodeId: string
  readonly updatedAt: string
}

export interface BenchClusterOptions {
  readonly nodeIds: ReadonlyArray<string>
  readonly cameras: number
  readonly dataDir: string
  readonly ffmpegPath: string
  readonly natsUrl: string
  readonly redisUrl: string
  readonly nodePath: string
}

/** Subscribes to camera status events of the node at `baseUrl` over JSON-RPC; closed with the scope. */
const subscribeEvents = (baseUrl: string, onEvent: (event: StatusEvent) => void) =>
  Effect.acquireRelease(
    Effect.callback<WebSocket, BenchClusterError>((resume) => {
      const socket = new WebSocket(`${baseUrl.replace("http", "ws")}/ws`)
      socket.on("open", () => {
        socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "subscribe", params: { events: ["camera_status_update"] } }))
      })
      socket.on("message", (data) => {
        const message = JSON.parse(data.toString()) as { id?: number; method?: string; params?: StatusEvent; error?: unknown }
        if (message.id === 1) {
          if (message.error !== undefined) resume(Effect.fail(new BenchClusterError({ reason: `subscribe: ${JSON.stringify(message.error)}` })))
          else resume(Effect.succeed(socket))
        } else if (message.method === "camera_status_update" && message.params !== undefined) {
          onEvent(message.params)
        }
      })
      socket.on("error", (error) => resume(Effect.fail(new BenchClusterError({ reason: `events of ${baseUrl}: ${error.message}` }))))
    }),
    (socket) => Effect.sync(() => socket.terminate())
  )

export const startBenchCluster = Effect.fn("BenchCluster.start")(function*(options: BenchClusterOptions) {
  const fs = yield* FileSystem.FileSystem
  const failure = (cause: unknown) => new BenchClusterError({ reason: String(cause) })
  yield* TestClip.load({ dataDir: options.dataDir, ffmpegPath: options.ffmpegPath })
  const ffmpeg = yield* ffmpegVersion(options.ffmpegPath).pipe(Effect.mapError(failure))
  const databaseUrl = yield* benchDatabaseUrl
  if (databaseUrl === undefined) {
    return yield* new BenchClusterError({ reason: "cluster mode needs a shared Postgres: none answers on 127.0.0.1:5432" })
  }
  const namespace = `bench${randomBytes(4).toString("hex")}`
  const simulator = yield* NodeUnderTest.startSimulator({ ...options })

  const events: Array<StatusEvent & { readonly receivedAt: number }> = []
  const start = (id: string) =>
    Effect.gen(function*() {
      const dataDir = yield* fs.makeTempDirectoryScoped({ prefix: `vms-bench-${id}-` }).pipe(Effect.mapError(failure))
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

  /** The running nodes by id, each with the scope that owns its process and data dir. */
  const nodes = new Map<string, { readonly node: NodeUnderTest.NodeProcess; readonly close: Effect.Effect<void> }>()
  const launch = (id: string) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const node = yield* start(id).pipe(Scope.provide(scope))
      nodes.set(id, { node, close: Scope.close(scope, Exit.void) })
    })
  /** Closes the node's scope (its process is killed if it still runs) and forgets it. */
  const remove = (id: string) =>
    Effect.suspend(() => {
      const entry = nodes.get(id)
      nodes.delete(id)
      return entry === undefined ? Effect.void : entry.close
    })
  yield* Effect.forEach(options.nodeIds, launch, { concurrency: "unbounded", discard: true })
  yield* Effect.addFinalizer(() => Effect.forEach([...nodes.values()], (n) => n.close, { discard: true }))
  const any = () => [...nodes.values()][0]!.node.baseUrl
  const cameraIds = Array.from({ length: options.cameras }, (_, i) => `cam${i}`)
  yield* Effect.forEach(cameraIds, (id, index) =>
    NodeUnderTest.addCamera(any(), { id, name: id, url: simulator.url(index) }), { concurrency: 8, discard: true })

  /** Waits until every camera is online on a running node; answers each camera's owner. */
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
          return yield* new BenchClusterError({ reason: `cameras not online after ${timeoutMs} ms: ${down.join(", ")}` })
        }
        yield* Effect.sleep("250 millis")
      }
    })

  /**
   * Settled, then settled again after a rebalance had time to move cameras;
   * the node owning the most cameras then, and those cameras.
   */
  const busiest = Effect.gen(function*() {
    const owners = yield* settled(60_000)
    yield* Effect.sleep("3 seconds")
    const stable = yield* settled(30_000)
    const counts = new Map<string, number>()
    for (const owner of stable.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1)
    const [nodeId] = [...counts].sort((a, b) => b[1] - a[1])[0]!
    const cameras = [...stable].filter(([, owner]) => owner === nodeId).map(([cameraId]) => cameraId)
    return { nodeId, cameras, camerasBefore: owners.size }
  })

  return { nodes, events, cameraIds, launch, remove, settled, busiest, ffmpeg }
})
