/**
 * `vms bench ingest`: what a node costs per live RTSP camera, and how fast it
 * answers a snapshot. Runs the simulator and a node as separate processes,
 * measures the node idle, registers N cameras over REST, and measures the
 * node process (CPU from /proc, heap from /metrics) and its ffmpeg children
 * (CPU, PSS) over a window, counting stalled streams; then times snapshots.
 * Merges the run into `ingest.json` and rewrites `ingest.md`. The method is
 * written out in the Markdown (IngestBenchReport).
 */
import { DateTime, Effect, FileSystem, Path, Schema } from "effect"
import * as TestClip from "../protocols/rtsp/TestClip.ts"
import { clipFacts, ffmpegVersion, machineFacts } from "./BenchMachine.ts"
import { benchDatabaseUrl } from "./BenchDatabase.ts"
import { IngestResults, type IngestRun, toMarkdown, withRun } from "./IngestBenchReport.ts"
import { jpegSize } from "../protocols/jpeg/JpegSize.ts"
import * as NodeUnderTest from "./NodeUnderTest.ts"
import { measureWindow, scrapeEverySeconds } from "./IngestWindow.ts"
import { clockTicksPerSecond, cpuPercent, sampleProcess } from "./ProcessSampler.ts"
import { median, percentile } from "./Stats.ts"

export class IngestBenchOptions extends Schema.Class<IngestBenchOptions>("vms/benchmarks/IngestBenchOptions")({
  cameras: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2000 })).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(100))
  ),
  /** Measurement window. */
  durationSeconds: Schema.Int.check(Schema.isGreaterThanOrEqualTo(4)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(60))),
  warmupSeconds: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(45))),
  /** Idle measurement before any camera is added. */
  baselineSeconds: Schema.Int.check(Schema.isGreaterThanOrEqualTo(2)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(20))),
  snapshotRequests: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(100))),
  /** Pause between snapshot requests, so they span several chunks instead of hitting one cached image. */
  snapshotIntervalMs: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(100))),
  /** Where the simulator caches its test clip. */
  dataDir: Schema.String,
  ffmpegPath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("ffmpeg"))),
  resultsDir: Schema.String,
  /** Node binary for the simulator and the node; the current one by default. */
  nodePath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(process.execPath)))
}) {}

export class IngestBenchError extends Schema.TaggedError<IngestBenchError>()("IngestBenchError", {
  reason: Schema.String
}) {}

const Budget = { cpuPercentPerCamera: 0.05, heapMegabytesPerCamera: 2, stalled: 0, snapshotP95Ms: 150 } as const
const registerConcurrency = 8
const megabytes = (bytes: number) => bytes / (1024 * 1024)

const latency = (values: ReadonlyArray<number>) => ({ p50: percentile(values, 50), p95: percentile(values, 95), max: percentile(values, 100) })

/** Warnings and errors the node logged, grouped by level and message. */
const summarizeLog = (lines: ReadonlyArray<string>) => {
  const counts = new Map<string, { level: string; message: string; count: number }>()
  for (const line of lines) {
    let level = "OUTPUT"
    let message = line.trim()
    try {
      const entry = JSON.parse(line) as { level?: string; message?: unknown }
      level = entry.level ?? level
      message = typeof entry.message === "string" ? entry.message : JSON.stringify(entry.message)
    } catch {
      // Not a log line of ours (a stack trace, a runtime warning): kept as it is.
    }
    if (message === "" || level === "INFO" || level === "DEBUG" || level === "TRACE") continue
    const key = `${level} ${message}`
    const entry = counts.get(key) ?? { level, message: message.slice(0, 300), count: 0 }
    entry.count++
    counts.set(key, entry)
  }
  const messages = [...counts.values()].sort((a, b) => b.count - a.count)
  const total = (levels: ReadonlyArray<string>) => messages.filter((m) => levels.includes(m.level)).reduce((sum, m) => sum + m.count, 0)
  return { warnings: total(["WARN", "WARNING"]), errors: total(["ERROR", "FATAL", "OUTPUT"]), messages: messages.slice(0, 20) }
}

export const runIngestBench = Effect.fn("IngestBench.run")(function*(input: typeof IngestBenchOptions.Encoded) {
  const options = yield* Schema.decodeUnknownEffect(IngestBenchOptions)(input).pipe(
    Effect.mapError((error) => new IngestBenchError({ reason: error.message }))
  )
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failure = (cause: unknown) => new IngestBenchError({ reason: String(cause) })
  const startedAt = DateTime.formatIso(yield* DateTime.now)
  const n = options.cameras
  const cameraIds = Array.from({ length: n }, (_, index) => `cam${index}`)

  // Encode/load the clip here, so the simulator process only reads the cache.
  const clip = yield* TestClip.load({ dataDir: options.dataDir, ffmpegPath: options.ffmpegPath })
  const ticksPerSecond = yield* clockTicksPerSecond
  const ffmpeg = yield* ffmpegVersion(options.ffmpegPath).pipe(Effect.mapError(failure))

  const databaseUrl = yield* benchDatabaseUrl
  const simulator = yield* NodeUnderTest.startSimulator({ ...options })
  const nodeDataDir = yield* fs.makeTempDirectoryScoped({ prefix: "vms-bench-ingest-" }).pipe(
    Effect.flatMap((dir) => fs.realPath(dir)),
    Effect.mapError(failure)
  )
  const node = yield* NodeUnderTest.startNode({
    nodePath: options.nodePath,
    dataDir: nodeDataDir,
    ffmpegPath: options.ffmpegPath,
    databaseUrl,
    readyTimeoutSeconds: databaseUrl === undefined ? 180 : 60
  })
  yield* Effect.logInfo("node ready").pipe(Effect.annotateLogs({ pid: node.pid, url: node.baseUrl, simulatorPid: simulator.pid }))
  const heapBytes = NodeUnderTest.scrapeMetrics(node.baseUrl).pipe(
    Effect.map((samples) => NodeUnderTest.metricValue(samples, "nodejs_heap_size_used_bytes") ?? 0)
  )

  // Idle baseline.
  yield* Effect.sleep("3 seconds")
  const idleFrom = yield* sampleProcess(node.pid)
  const idleHeap: Array<number> = []
  const idleRss: Array<number> = []
  while (Date.now() - idleFrom.atMs < options.baselineSeconds * 1000) {
    idleHeap.push(yield* heapBytes)
    idleRss.push((yield* sampleProcess(node.pid)).rssBytes)
    yield* Effect.sleep(`${scrapeEverySeconds} seconds`)
  }
  const idleTo = yield* sampleProcess(node.pid)
  const baselineCpu = cpuPercent(idleFrom, idleTo, ticksPerSecond)
  yield* Effect.logInfo("baseline measured").pipe(Effect.annotateLogs({ cpuPercent: baselineCpu.toFixed(2), heapMegabytes: megabytes(median(idleHeap)).toFixed(1) }))

  // Register every camera and wait until all are online.
  const registeredAt = Date.now()
  yield* Effect.forEach(cameraIds, (id, index) =>
    NodeUnderTest.addCamera(node.baseUrl, { id, name: `Camera ${index}`, url: simulator.url(index) }), {
    concurrency: registerConcurrency,
    discard: true
  })
  const deadlineSeconds = 20 + 0.2 * n
  let secondsToAllOnline: number | null = null
  while (Date.now() - registeredAt < deadlineSeconds * 1000) {
    const online = yield* NodeUnderTest.scrapeMetrics(node.baseUrl).pipe(
      Effect.map((samples) => NodeUnderTest.metricValue(samples, "vms_cameras", { status: "online" }) ?? 0),
      Effect.orElseSucceed(() => 0)
    )
    if (online >= n) {
      secondsToAllOnline = (Date.now() - registeredAt) / 1000
      break
    }
    yield* Effect.sleep("1 second")
  }
  const statuses = Effect.forEach(cameraIds, (id) => NodeUnderTest.cameraStatus(node.baseUrl, id), { concurrency: registerConcurrency })
  const atDeadline = secondsToAllOnline === null
    ? (yield* statuses).filter((s) => s.status !== "online").map(({ cameraId, reason, status }) => ({ cameraId, status, reason }))
    : []
  if (atDeadline.length > 0) {
    yield* Effect.logWarning(`${atDeadline.length} of ${n} cameras not online after ${deadlineSeconds} s; measuring anyway, they count as stalled`)
      .pipe(Effect.annotateLogs({ cameras: atDeadline.map((c) => `${c.cameraId}: ${c.status}${c.reason === null ? "" : ` (${c.reason})`}`) }))
  } else {
    yield* Effect.logInfo("all cameras online").pipe(Effect.annotateLogs({ seconds: secondsToAllOnline }))
  }

  yield* Effect.sleep(`${options.warmupSeconds} seconds`)
  yield* Effect.logInfo("measuring").pipe(Effect.annotateLogs({ seconds: options.durationSeconds }))
  const window = yield* measureWindow({
    nodePid: node.pid,
    simulatorPid: simulator.pid,
    baseUrl: node.baseUrl,
    cameraIds,
    seconds: options.durationSeconds,
    ticksPerSecond,
    lowFpsBelow: clip.fps / 2
  })
  const endStatuses = yield* statuses
  const notOnlineAtEnd = endStatuses.filter((s) => s.status !== "online").map((s) => s.cameraId)
  const stalledSet = new Set([...notOnlineAtEnd, ...window.lowFps, ...window.stallsIncreased, ...window.restartsIncreased])
  const stalled = cameraIds.filter((id) => stalledSet.has(id))

  // Snapshots on a running camera, all cameras still ingesting.
  const snapshotCamera = endStatuses.find((s) => s.status === "online")?.cameraId ?? cameraIds[0]!
  const latencies: Array<number> = []
  const freshLatencies: Array<number> = []
  const errors = new Set<string>()
  let validJpeg = 0
  let sizeMatches = 0
  let previous: Uint8Array | undefined
  for (let request = 0; request < options.snapshotRequests; request++) {
    const response = yield* NodeUnderTest.timedGet(`${node.baseUrl}/api/v1/cameras/${snapshotCamera}/snapshot`).pipe(
      Effect.catch((error) => Effect.succeed({ ms: Number.NaN, status: 0, contentType: "", body: new TextEncoder().encode(error.reason) }))
    )
    const size = response.status === 200 && response.contentType.startsWith("image/jpeg") ? jpegSize(response.body) : undefined
    if (response.status !== 0) latencies.push(response.ms)
    if (size === undefined) {
      errors.add(`HTTP ${response.status} ${response.contentType}: ${new TextDecoder().decode(response.body.slice(0, 200))}`)
    } else {
      validJpeg++
      if (size.width === clip.width && size.height === clip.height) sizeMatches++
      else errors.add(`JPEG is ${size.width}x${size.height}, the stream ${clip.width}x${clip.height}`)
      if (previous === undefined || Buffer.compare(previous, response.body) !== 0) freshLatencies.push(response.ms)
      previous = response.body
    }
    if (options.snapshotIntervalMs > 0) yield* Effect.sleep(options.snapshotIntervalMs)
  }
  const snapshotLatency = latency(latencies)

  const logSummary = summarizeLog(node.logLines())
  const shutdown = yield* node.stop
  yield* Effect.logInfo("node stopped").pipe(Effect.annotateLogs({ ...shutdown }))

  const heapPerCamera = megabytes(window.heapBytes - median(idleHeap)) / n
  const cpuPerCamera = (window.nodeCpuPercent - baselineCpu) / n
  const run: IngestRun = {
    cameras: n,
    startedAt,
    database: databaseUrl === undefined ? "embedded Postgres" : "local Postgres",
    baselineSeconds: (idleTo.atMs - idleFrom.atMs) / 1000,
    warmupSeconds: options.warmupSeconds,
    windowSeconds: window.seconds,
    online: { deadlineSeconds, secondsToAllOnline, atDeadline, atEnd: n - notOnlineAtEnd.length },
    node: {
      baselineCpuPercent: baselineCpu,
      loadedCpuPercent: window.nodeCpuPercent,
      cpuPercentPerCamera: cpuPerCamera,
      baselineHeapMegabytes: megabytes(median(idleHeap)),
      loadedHeapMegabytes: megabytes(window.heapBytes),
      heapMegabytesPerCamera: heapPerCamera,
      baselineRssMegabytes: megabytes(median(idleRss)),
      loadedRssMegabytes: megabytes(window.nodeRssBytes)
    },
    ffmpeg: {
      processes: window.ffmpegProcesses,
      startedInWindow: window.ffmpegStarted,
      cpuPercent: window.ffmpegCpuPercent,
      cpuPercentPerCamera: window.ffmpegCpuPercent / n,
      pssMegabytes: megabytes(window.ffmpegPssBytes),
      pssMegabytesPerCamera: megabytes(window.ffmpegPssBytes) / n
    },
    simulatorCpuPercent: window.simulatorCpuPercent,
    machineBusyPercent: window.machineBusyPercent,
    streams: {
      sourceFps: clip.fps,
      lowFpsBelow: clip.fps / 2,
      fpsMin: window.fpsMin,
      fpsMedian: window.fpsMedian,
      notOnlineAtEnd,
      lowFps: window.lowFps,
      stallsIncreased: window.stallsIncreased,
      restartsIncreased: window.restartsIncreased,
      stalled
    },
    snapshot: {
      cameraId: snapshotCamera,
      requests: options.snapshotRequests,
      intervalMs: options.snapshotIntervalMs,
      validJpeg,
      expectedWidth: clip.width,
      expectedHeight: clip.height,
      sizeMatches,
      freshImages: freshLatencies.length,
      latencyMs: snapshotLatency,
      freshLatencyMs: latency(freshLatencies),
      errors: [...errors].slice(0, 5)
    },
    nodeLog: logSummary,
    shutdown,
    budget: {
      ...Budget,
      ingestPass: cpuPerCamera <= Budget.cpuPercentPerCamera && heapPerCamera <= Budget.heapMegabytesPerCamera &&
        stalled.length <= Budget.stalled,
      snapshotPass: sizeMatches === options.snapshotRequests && snapshotLatency.p95 <= Budget.snapshotP95Ms
    },
    machine: machineFacts(ffmpeg),
    clip: clipFacts(clip)
  }

  yield* fs.makeDirectory(options.resultsDir, { recursive: true }).pipe(Effect.mapError(failure))
  const jsonPath = path.join(options.resultsDir, "ingest.json")
  const previousResults = yield* fs.readFileString(jsonPath).pipe(
    Effect.flatMap(Schema.decodeUnknownEffect(Schema.fromJsonString(IngestResults))),
    Effect.map((results): IngestResults | undefined => results),
    Effect.orElseSucceed(() => undefined)
  )
  const results = withRun(previousResults, run)
  const json = yield* Schema.encodeEffect(IngestResults)(results).pipe(Effect.mapError(failure))
  yield* fs.writeFileString(jsonPath, JSON.stringify(json, null, 2) + "\n").pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "ingest.md"), toMarkdown(results)).pipe(Effect.mapError(failure))
  yield* Effect.logInfo("ingest benchmark done").pipe(Effect.annotateLogs({
    cameras: n,
    nodeCpuPercentPerCamera: cpuPerCamera.toFixed(4),
    nodeHeapMegabytesPerCamera: heapPerCamera.toFixed(3),
    ffmpegCpuPercentPerCamera: run.ffmpeg.cpuPercentPerCamera.toFixed(3),
    ffmpegPssMegabytesPerCamera: run.ffmpeg.pssMegabytesPerCamera.toFixed(2),
    stalled: stalled.length,
    snapshotP95Ms: snapshotLatency.p95.toFixed(1),
    ingestPass: run.budget.ingestPass,
    snapshotPass: run.budget.snapshotPass
  }))
  return run
}, Effect.scoped)
