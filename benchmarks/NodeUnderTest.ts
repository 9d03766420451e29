/**
 * What a whole-node benchmark drives from outside: the RTSP camera simulator
 * (`vms simulate`) and a node (`vms start`), each a child process of its own
 * so their CPU is measured apart from each other and from the harness; and
 * the HTTP calls the harness makes to the node (readiness, REST cameras,
 * snapshots, `/metrics`). It measures nothing itself.
 */
import { Effect, Schedule, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as fs from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { freePort } from "../runtime/net/FreePort.ts"

export class NodeUnderTestError extends Schema.TaggedError<NodeUnderTestError>()("NodeUnderTestError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

const vmsEntry = fileURLToPath(new URL("../runtime/bin/vms.ts", import.meta.url))
const failWith = (context: string) => (cause: unknown) => new NodeUnderTestError({ reason: `${context}: ${String(cause)}` })

// ---------------------------------------------------------------------------
// HTTP

const request = (url: string, init: RequestInit = {}, timeoutMs = 10_000) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, { ...init, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) })
      return { status: response.status, contentType: response.headers.get("content-type") ?? "", body: new Uint8Array(await response.arrayBuffer()) }
    },
    catch: failWith(`${init.method ?? "GET"} ${url}`)
  })

const text = (body: Uint8Array) => new TextDecoder().decode(body)

export interface CameraToAdd {
  readonly id: string
  readonly name: string
  readonly url: string
}

/** `POST /api/v1/cameras`; anything but 201 is an error naming the camera and the answer. */
export const addCamera = (baseUrl: string, camera: CameraToAdd) =>
  request(`${baseUrl}/api/v1/cameras`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(camera)
  }).pipe(Effect.flatMap((response) =>
    response.status === 201
      ? Effect.void
      : Effect.fail(new NodeUnderTestError({ reason: `adding ${camera.id}: HTTP ${response.status} ${text(response.body)}` }))
  ))

export const CameraStatusView = Schema.Struct({
  cameraId: Schema.String,
  status: Schema.String,
  reason: Schema.NullOr(Schema.String),
  fps: Schema.Number,
  bitrate: Schema.Number,
  nodeId: Schema.String
})
export type CameraStatusView = typeof CameraStatusView.Type

/** `GET /api/v1/cameras/{id}/status`; a failed request reads as status `unreachable` with the reason. */
export const cameraStatus = (baseUrl: string, cameraId: string): Effect.Effect<CameraStatusView> =>
  request(`${baseUrl}/api/v1/cameras/${cameraId}/status`).pipe(
    Effect.flatMap((response) =>
      response.status === 200
        ? Schema.decodeUnknownEffect(Schema.fromJsonString(CameraStatusView))(text(response.body)).pipe(
          Effect.mapError(failWith("status body"))
        )
        : Effect.fail(new NodeUnderTestError({ reason: `HTTP ${response.status} ${text(response.body)}` }))
    ),
    Effect.catch((error) => Effect.succeed({ cameraId, status: "unreachable", reason: error.reason, fps: 0, bitrate: 0, nodeId: "" }))
  )

export interface TimedResponse {
  readonly ms: number
  readonly status: number
  readonly contentType: string
  readonly body: Uint8Array
}

/** One `GET`, timed from the request to the last byte of the body. */
export const timedGet = (url: string) =>
  Effect.gen(function*() {
    const start = performance.now()
    const response = yield* request(url)
    return { ...response, ms: performance.now() - start } satisfies TimedResponse
  })

export interface MetricSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of a Prometheus text exposition (comments skipped). */
export const parseMetrics = (exposition: string): ReadonlyArray<MetricSample> => {
  const samples: Array<MetricSample> = []
  for (const line of exposition.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match === null) continue
    const labels: Record<string, string> = {}
    for (const label of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, char: string) => char === "n" ? "\n" : char)
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

export const scrapeMetrics = (baseUrl: string) =>
  request(`${baseUrl}/metrics`).pipe(Effect.map((response) => parseMetrics(text(response.body))))

/** The value of the first sample of `name` whose labels include `labels`. */
export const metricValue = (
  samples: ReadonlyArray<MetricSample>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined =>
  samples.find((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v))?.value

/** Per value of `label`, the value of `name`. */
export const metricByLabel = (samples: ReadonlyArray<MetricSample>, name: string, label: string): Map<string, number> =>
  new Map(samples.filter((s) => s.name === name && s.labels[label] !== undefined).map((s) => [s.labels[label]!, s.value]))

// ---------------------------------------------------------------------------
// Processes

export interface SimulatorProcess {
  readonly pid: number
  readonly url: (index: number) => string
}

/** `vms simulate` serving `cam0 … cam<N-1>`, ready once its control endpoint answers; stopped with the scope. */
export const startSimulator = Effect.fn("NodeUnderTest.startSimulator")(function*(options: {
  readonly cameras: number
  readonly dataDir: string
  readonly ffmpegPath: string
  readonly nodePath: string
}) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const port = yield* freePort.pipe(Effect.mapError(failWith("free port")))
  const controlPort = yield* freePort.pipe(Effect.mapError(failWith("free port")))
  const handle = yield* spawner.spawn(ChildProcess.make(options.nodePath, [
    vmsEntry, "simulate",
    "--cameras", `${options.cameras}`,
    "--port", `${port}`,
    "--control-port", `${controlPort}`,
    "--data-dir", options.dataDir,
    "--ffmpeg-path", options.ffmpegPath,
    "--log-level", "warn"
  ], { stdin: "ignore", stdout: "ignore", stderr: "inherit", killSignal: "SIGINT", forceKillAfter: "5 seconds" })).pipe(
    Effect.mapError(failWith("spawning the simulator"))
  )
  yield* request(`http://127.0.0.1:${controlPort}/stats`, {}, 1_000).pipe(
    Effect.retry({ schedule: Schedule.spaced("200 millis") }),
    Effect.timeoutOrElse({
      duration: "60 seconds",
      orElse: () => Effect.fail(new NodeUnderTestError({ reason: "the simulator did not answer within 60 s" }))
    })
  )
  return { pid: handle.pid as number, url: (index: number) => `rtsp://127.0.0.1:${port}/cam${index}` } satisfies SimulatorProcess
})

export interface NodeStopped {
  readonly exitCode: number | string
  readonly stopSeconds: number
  /** ffmpeg processes still working under the node's data dir after it exited. */
  readonly ffmpegsLeft: number
}

export interface NodeProcess {
  readonly pid: number
  readonly baseUrl: string
  /** The lines the node logged so far (JSON, one per line). */
  readonly logLines: () => ReadonlyArray<string>
  /** SIGINT (the node stops its cameras and their ffmpegs), then waits for the exit. */
  readonly stop: Effect.Effect<NodeStopped>
  /** The same with another signal: SIGTERM, as an orchestrator stops a node (it hands its cameras over). */
  readonly stopWith: (signal: "SIGINT" | "SIGTERM") => Effect.Effect<NodeStopped>
}

/** ffmpeg processes whose working directory lies under `dir` (a camera's live dir is its cwd). */
export const ffmpegsUnder = (dir: string): Effect.Effect<number> =>
  Effect.promise(async () => {
    let count = 0
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      const name = await fs.readFile(`/proc/${entry}/comm`, "utf8").catch(() => "")
      if (name.trim() !== "ffmpeg") continue
      const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => "")
      if (cwd === dir || cwd.startsWith(`${dir}/`)) count++
    }
    return count
  })

/**
 * `vms start` on a free port with a data dir and database of the caller's,
 * logging at `warn`, ready once `/health/ready` answers 200. The environment
 * is only PATH, HOME and these `VMS_*` variables. Killed with the scope if
 * the caller did not stop it.
 */
export const startNode = Effect.fn("NodeUnderTest.startNode")(function*(options: {
  readonly nodePath: string
  readonly dataDir: string
  readonly ffmpegPath: string
  readonly databaseUrl: string | undefined
  readonly readyTimeoutSeconds: number
  /** More `VMS_*` settings (cluster mode: NATS URL, namespace, node id). */
  readonly env?: Readonly<Record<string, string>>
}) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const port = yield* freePort.pipe(Effect.mapError(failWith("free port")))
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    VMS_HTTP_HOST: "127.0.0.1",
    VMS_HTTP_PORT: `${port}`,
    VMS_DATA_DIR: options.dataDir,
    VMS_FFMPEG_PATH: options.ffmpegPath,
    VMS_LOG_LEVEL: "warn",
    // To profile the node under load: VMS_BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof".
    ...(process.env.VMS_BENCH_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: process.env.VMS_BENCH_NODE_OPTIONS }),
    ...(options.databaseUrl === undefined ? {} : { VMS_DATABASE_URL: options.databaseUrl }),
    ...options.env
  }
  const handle = yield* spawner.spawn(ChildProcess.make(options.nodePath, [vmsEntry, "start"], {
    env,
    stdin: "ignore",
    killSignal: "SIGINT",
    forceKillAfter: "20 seconds"
  })).pipe(Effect.mapError(failWith("spawning the node")))
  const lines: Array<string> = []
  yield* handle.all.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) => Effect.sync(() => lines.length < 100_000 && lines.push(line))),
    Effect.ignore,
    Effect.forkScoped
  )
  const baseUrl = `http://127.0.0.1:${port}`
  const tail = () => lines.slice(-10).join("\n")
  yield* Effect.gen(function*() {
    while (true) {
      if (!(yield* handle.isRunning.pipe(Effect.orElseSucceed(() => false)))) {
        return yield* new NodeUnderTestError({ reason: `the node exited while starting:\n${tail()}` })
      }
      const status = yield* request(`${baseUrl}/health/ready`, {}, 2_000).pipe(
        Effect.map((response) => response.status),
        Effect.orElseSucceed(() => 0)
      )
      if (status === 200) return
      yield* Effect.sleep("250 millis")
    }
  }).pipe(Effect.timeoutOrElse({
    duration: `${options.readyTimeoutSeconds} seconds`,
    orElse: () => Effect.fail(new NodeUnderTestError({ reason: `the node was not ready within ${options.readyTimeoutSeconds} s:\n${tail()}` }))
  }))
  const stopWith = (signal: "SIGINT" | "SIGTERM") => Effect.gen(function*() {
    const start = Date.now()
    yield* handle.kill({ killSignal: signal, forceKillAfter: "20 seconds" }).pipe(Effect.ignore)
    const exitCode = yield* handle.exitCode.pipe(
      Effect.map((code): number | string => Number(code)),
      Effect.catch((error) => Effect.succeed(error.message))
    )
    return { exitCode, stopSeconds: (Date.now() - start) / 1000, ffmpegsLeft: yield* ffmpegsUnder(options.dataDir) }
  })
  return { pid: handle.pid as number, baseUrl, logLines: () => lines, stop: stopWith("SIGINT"), stopWith } satisfies NodeProcess
})
