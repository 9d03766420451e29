/**
 * Whole clusters for tests: real `vms start` processes on loopback sharing a
 * test database and a NATS namespace, each with its own data dir, port and
 * node id; REST helpers that talk to any of them; and a scan of the
 * machine's ffmpeg processes (which camera mount each pulls, which node
 * started it) for the one-owner checks.
 */
import { Effect, type Scope } from "effect"
import WebSocket from "ws"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import { freePort } from "../../runtime/net/FreePort.ts"
import { eventually } from "./Eventually.ts"
import { redisUrl } from "./Redis.ts"
import { spawnVms, type VmsProcess } from "./NodeProcess.ts"
import { tempDir } from "./TestNode.ts"

export interface ClusterNode {
  readonly id: string
  readonly dataDir: string
  readonly baseUrl: string
  readonly process: VmsProcess
  readonly pid: number
}

export interface ClusterEnv {
  readonly natsUrl: string
  readonly databaseUrl: string
  readonly namespace: string
}

/** Starts `vms start` as node `id` and waits until it is ready. */
export const startNode = (
  cluster: ClusterEnv,
  id: string,
  env: Record<string, string> = {}
): Effect.Effect<ClusterNode, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const dataDir = yield* tempDir(`cluster-${id}`)
    const port = yield* freePort
    const vms = yield* spawnVms(["start"], {
      VMS_NATS_URL: cluster.natsUrl,
      VMS_REDIS_URL: yield* redisUrl,
      VMS_DATABASE_URL: cluster.databaseUrl,
      VMS_CLUSTER: cluster.namespace,
      VMS_NODE_ID: id,
      VMS_HTTP_PORT: String(port),
      VMS_DATA_DIR: dataDir,
      VMS_LOG_LEVEL: process.env.TEST_VMS_LOG_LEVEL ?? "info",
      ...env
    })
    const baseUrl = `http://127.0.0.1:${port}`
    // A node that exits (a bad setting, a crash at start) fails the wait at once, not at its deadline.
    const ready = Effect.promise(() =>
      fetch(`${baseUrl}/health/ready`).then((r) => r.status === 200 ? true : undefined).catch(() => undefined)
    ).pipe(Effect.flatMap((isReady) =>
      isReady === undefined && (vms.child.exitCode !== null || vms.child.signalCode !== null)
        ? Effect.die(new Error(`node ${id} exited before it was ready (${vms.child.exitCode ?? vms.child.signalCode})`))
        : Effect.succeed(isReady)
    ))
    yield* eventually(`node ${id} ready`, ready, 60_000, 100).pipe(
      Effect.tapCause(() => Effect.sync(() => console.error(vms.output().slice(-3000))))
    )
    return { id, dataDir, baseUrl, process: vms, pid: vms.child.pid! }
  })

export const json = (url: string, init?: RequestInit) =>
  Effect.promise(() =>
    fetch(url, init).then(async (response) => ({ status: response.status, body: await response.json().catch(() => null) }))
      .catch(() => ({ status: 0, body: null }))
  )

export const addCamera = (node: ClusterNode, id: string, url: string) =>
  json(`${node.baseUrl}/api/v1/cameras`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id, name: id, url })
  }).pipe(Effect.flatMap((response) =>
    response.status === 201 ? Effect.void : Effect.die(new Error(`adding ${id}: ${response.status} ${JSON.stringify(response.body)}`))
  ))

/** A gauge's value as the node's /metrics page shows it now (NaN when absent). */
export const gauge = (node: ClusterNode, name: string) =>
  Effect.promise(() =>
    fetch(`${node.baseUrl}/metrics`).then((r) => r.text()).then((page) =>
      Number(new RegExp(`^${name} (\\S+)$`, "m").exec(page)?.[1])
    ).catch(() => Number.NaN)
  )

export interface StatusView {
  readonly cameraId: string
  readonly status: string
  readonly nodeId: string
}

export const status = (node: ClusterNode, cameraId: string) =>
  json(`${node.baseUrl}/api/v1/cameras/${cameraId}/status`).pipe(
    Effect.map((response) => response.status === 200 ? response.body as StatusView : undefined)
  )

/** Every camera's status as `via` answers it; undefined until all answer. */
export const statuses = (via: ClusterNode, cameraIds: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(cameraIds, (id) => status(via, id), { concurrency: 8 }),
    (all) => all.every((s) => s !== undefined) ? all as ReadonlyArray<StatusView> : undefined
  )

/** Waits until every camera is online on one of `owners` (node ids), answering their statuses. */
export const allOnline = (via: ClusterNode, cameraIds: ReadonlyArray<string>, owners: ReadonlyArray<string>, timeoutMs: number) =>
  eventually(
    `all ${cameraIds.length} cameras online on ${owners.join(", ")}`,
    Effect.map(statuses(via, cameraIds), (all) =>
      all !== undefined && all.every((s) => s.status === "online" && owners.includes(s.nodeId)) ? all : undefined),
    timeoutMs,
    100
  )

export interface FfmpegProcess {
  readonly pid: number
  readonly parent: number
  /** The RTSP URL it pulls. */
  readonly source: string
  /** `R`, `S`, `T` (stopped), …: a frozen node's ffmpegs are stopped too. */
  readonly state: string
}

/** The ingest ffmpegs on the machine pulling from `rtspPrefix` (e.g. `rtsp://127.0.0.1:PORT/`). */
export const ingestFfmpegs = (rtspPrefix: string): Effect.Effect<ReadonlyArray<FfmpegProcess>> =>
  Effect.promise(async () => {
    const found: Array<FfmpegProcess> = []
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      // `stat` first (the process name is in it): only ffmpegs' command lines are read. The scan runs
      // every 100 ms in the process that also serves the simulated cameras.
      const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8").catch(() => "")
      if (!stat.includes(" (ffmpeg) ")) continue
      const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")
      const args = cmdline.split("\0")
      if (!args[0]?.endsWith("ffmpeg")) continue
      const source = args[args.indexOf("-i") + 1]
      if (source === undefined || !source.startsWith(rtspPrefix) || !args.includes("segment")) continue
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      found.push({ pid: Number(entry), parent: Number(fields[1]), source, state: fields[0] ?? "?" })
    }
    return found
  })

/** Sources pulled by more than one running (not stopped) ffmpeg, as one scan saw them. */
const doublePulled = (ffmpegs: ReadonlyArray<FfmpegProcess>): Map<string, Array<number>> => {
  const pids = new Map<string, Array<number>>()
  for (const ffmpeg of ffmpegs) {
    if (ffmpeg.state === "T") continue
    const of = pids.get(ffmpeg.source)
    if (of === undefined) pids.set(ffmpeg.source, [ffmpeg.pid])
    else of.push(ffmpeg.pid)
  }
  return new Map([...pids].filter(([, of]) => of.length > 1))
}

/** Whether `pid` pulls `source` now and is not stopped (nor a zombie): read at once, synchronously. */
const pullsNow = (pid: number, source: string): boolean => {
  try {
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, "utf8")
    if (["T", "t", "Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? "?")) return false
    const args = fsSync.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    return args[args.indexOf("-i") + 1] === source
  } catch {
    return false
  }
}

/**
 * Sources that two running ffmpegs pull at the same moment. A scan of /proc
 * is no snapshot: it reads one process after another, for up to a few hundred
 * milliseconds on a busy machine (360 ms seen here), so it can read a leaving
 * owner's ffmpeg just before it exits and its successor's just after it
 * starts (a clean SIGTERM handover: 100 ms apart). Each double a scan
 * sees is checked again at once, twice over, in pid order: two processes seen
 * alive in both passes were alive together (each lived through the span
 * between its two reads, and those spans overlap).
 */
export const pulledTwice = (rtspPrefix: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(ingestFfmpegs(rtspPrefix), (ffmpegs) =>
    [...doublePulled(ffmpegs)].filter(([source, pids]) => {
      const first = pids.map((pid) => pullsNow(pid, source))
      const second = pids.map((pid) => pullsNow(pid, source))
      return pids.filter((_, i) => first[i] && second[i]).length > 1
    }).map(([source]) => source))

/** A `camera_status_update` as a subscriber received it. */
export interface ReceivedStatus {
  readonly cameraId: string
  readonly status: string
  readonly nodeId: string
  readonly updatedAt: string
  readonly receivedAt: number
}

/** Camera status events as a JSON-RPC subscriber on `node` receives them. */
export const statusEvents = (node: ClusterNode) =>
  Effect.gen(function*() {
    const received: Array<ReceivedStatus> = []
    yield* Effect.acquireRelease(
      Effect.callback<WebSocket>((resume) => {
        const socket = new WebSocket(`${node.baseUrl.replace("http", "ws")}/ws`)
        socket.on("open", () =>
          socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "subscribe", params: { events: ["camera_status_update"] } })))
        socket.on("message", (data) => {
          const message = JSON.parse(data.toString())
          if (message.id === 1) resume(Effect.succeed(socket))
          else if (message.method === "camera_status_update") received.push({ ...message.params, receivedAt: Date.now() })
        })
      }),
      (socket) => Effect.sync(() => socket.terminate())
    )
    return received
  })
