/**
 * `vms bench playback`: the two playback budgets on one in-process node
 * with its embedded Postgres and the filesystem store. (1) Time to first
 * byte of the VOD playlist for a 24 h range (1,440 segments of 60 s),
 * budget ≤ 50 ms. (2) MP4 export of a 1 h range (60 segments), budget ≥
 * 1,000× real time, measured from the request to the last byte received.
 * The segments are one 60 s, 1 Mbit/s, 1280×720 H.264 MPEG-TS encoded
 * once and hard-linked as every object (the work per segment does not
 * depend on its pictures). Writes `playback.json` and `playback.md`.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Schema } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as http from "node:http"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeConfig from "../runtime/config/NodeConfig.ts"
import * as Node from "../runtime/Node.ts"
import { RecordingIndex } from "../runtime/recording/RecordingIndex.ts"
import * as SegmentProbe from "../runtime/recording/SegmentProbe.ts"
import { segmentKey, SegmentStore } from "../runtime/recording/SegmentStore.ts"

export class PlaybackBenchError extends Schema.TaggedError<PlaybackBenchError>()("PlaybackBenchError", {
  reason: Schema.String
}) {}

export interface PlaybackBenchOptions {
  readonly dataDir: string
  readonly ffmpegPath: string
  readonly resultsDir: string
  /** Playlist requests measured (after 5 warm-up requests). */
  readonly requests?: number
  /** Exports measured, each of a different hour. */
  readonly exports?: number
}

const segmentMs = 60_000
const segments24h = 1_440
const playlistBudgetMs = 50
const exportBudgetSpeed = 1_000

const quantile = (values: ReadonlyArray<number>, q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
}

/** Milliseconds to the first body byte, and to the last, of a GET; plus the bytes, status and headers. */
const timedGet = (url: string) =>
  Effect.callback<{ firstByteMs: number; totalMs: number; bytes: number; status: number; headers: http.IncomingHttpHeaders }, PlaybackBenchError>((resume) => {
    const started = performance.now()
    let firstByteMs = -1
    let bytes = 0
    http.get(url, (response) => {
      response.on("data", (chunk: Buffer) => {
        if (firstByteMs < 0) firstByteMs = performance.now() - started
        bytes += chunk.length
      })
      response.on("end", () =>
        resume(Effect.succeed({ firstByteMs, totalMs: performance.now() - started, bytes, status: response.statusCode ?? 0, headers: response.headers })))
      response.on("error", (cause) => resume(Effect.fail(new PlaybackBenchError({ reason: String(cause) }))))
    }).on("error", (cause) => resume(Effect.fail(new PlaybackBenchError({ reason: String(cause) }))))
  })

const encodeSegment = (ffmpegPath: string, file: string) =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const exitCode = yield* spawner.exitCode(ChildProcess.make(ffmpegPath, [
      "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=15:duration=60",
      "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1000k", "-maxrate", "1000k", "-bufsize", "1000k",
      "-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-bf", "0", "-f", "mpegts", "-y", file
    ], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }))
    if (Number(exitCode) !== 0) return yield* new PlaybackBenchError({ reason: `ffmpeg could not encode the test segment (${exitCode})` })
  })

export const runPlaybackBench = (options: PlaybackBenchOptions) =>
  Effect.gen(function*() {
    const workDir = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        await fs.mkdir(options.dataDir, { recursive: true })
        const dir = await fs.mkdtemp(path.join(path.resolve(options.dataDir), "bench-playback-"))
        await fs.chmod(dir, 0o755)
        return dir
      }),
      (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
    )
    const segmentFile = path.join(workDir, "segment.ts")
    yield* Effect.logInfo("encoding a 60 s test segment")
    yield* encodeSegment(options.ffmpegPath, segmentFile)
    const segmentBytes = (yield* Effect.promise(() => fs.stat(segmentFile))).size
    const probed = yield* SegmentProbe.probe(options.ffmpegPath, segmentFile).pipe(
      Effect.mapError((error) => new PlaybackBenchError({ reason: error.message }))
    )
    const config = yield* NodeConfig.fromEnv({
      VMS_DATA_DIR: path.join(workDir, "node"),
      VMS_HTTP_PORT: "0",
      VMS_LOG_LEVEL: "warn",
      VMS_FFMPEG_PATH: options.ffmpegPath
    })

    return yield* Effect.gen(function*() {
      const index = yield* RecordingIndex
      const store = yield* SegmentStore
      const server = yield* HttpServer.HttpServer
      const base = NetAddress.formatUrlUnsafe(server.address)
      const t0 = Math.floor(Date.now() / 86_400_000 - 2) * 86_400_000
      yield* Effect.logInfo("indexing 1,440 segments (24 h)")
      for (let i = 0; i < segments24h; i++) {
        const startMs = t0 + i * segmentMs
        const key = segmentKey("bench", startMs)
        yield* store.put(key, segmentFile, segmentBytes)
        yield* index.insert({
          cameraId: "bench", startMs, endMs: startMs + segmentMs, durationMs: probed.durationMs, bytes: segmentBytes,
          objectKey: key, codec: probed.codec, width: probed.width, height: probed.height, nodeId: "bench"
        })
      }
      const iso = (ms: number) => new Date(ms).toISOString()
      const playlistUrl = `${base}/playback/bench/index.m3u8?from=${iso(t0)}&to=${iso(t0 + segments24h * segmentMs)}`
      for (let i = 0; i < 5; i++) yield* timedGet(playlistUrl)
      const playlist: Array<number> = []
      let playlistBytes = 0
      for (let i = 0; i < (options.requests ?? 50); i++) {
        const reply = yield* timedGet(playlistUrl)
        if (reply.status !== 200) return yield* new PlaybackBenchError({ reason: `playlist answered ${reply.status}` })
        playlist.push(reply.firstByteMs)
        playlistBytes = reply.bytes
      }

      const exports: Array<{
        seconds: number
        producedSeconds: number
        bytes: number
        speed: number
        producedSpeed: number
        durationSeconds: number
      }> = []
      for (let hour = 0; hour < (options.exports ?? 2); hour++) {
        const from = t0 + hour * 3_600_000
        const url = `${base}/export/bench.mp4?from=${iso(from)}&to=${iso(from + 3_600_000)}`
        yield* Effect.logInfo("exporting 1 h").pipe(Effect.annotateLogs({ hour }))
        const reply = yield* timedGet(url)
        if (reply.status !== 200) return yield* new PlaybackBenchError({ reason: `export answered ${reply.status}` })
        const exportedDir = path.join(workDir, "node", "exports")
        const [file] = (yield* Effect.promise(() => fs.readdir(exportedDir))).filter((f) => f.endsWith(".mp4")).map((f) => path.join(exportedDir, f))
        const duration = yield* SegmentProbe.probe(options.ffmpegPath, file!).pipe(
          Effect.mapError((error) => new PlaybackBenchError({ reason: error.message }))
        )
        yield* Effect.promise(() => fs.rm(file!, { force: true }))
        const seconds = reply.totalMs / 1000
        const producedSeconds = Number(reply.headers["x-export-ms"]) / 1000
        exports.push({
          seconds,
          producedSeconds,
          bytes: reply.bytes,
          speed: 3_600 / seconds,
          producedSpeed: 3_600 / producedSeconds,
          durationSeconds: duration.durationMs / 1000
        })
      }

      const result = {
        scenario: "playback",
        at: new Date().toISOString(),
        machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "unknown", node: process.version },
        segment: { seconds: probed.durationMs / 1000, bytes: segmentBytes, codec: probed.codec, width: probed.width, height: probed.height },
        playlist: {
          segments: segments24h,
          bytes: playlistBytes,
          requests: playlist.length,
          firstByteMs: { p50: quantile(playlist, 0.5), p95: quantile(playlist, 0.95), max: Math.max(...playlist) },
          budgetMs: playlistBudgetMs,
          withinBudget: quantile(playlist, 0.95) <= playlistBudgetMs
        },
        export: {
          rangeSeconds: 3_600,
          runs: exports,
          /** Making the MP4 (index, ffmpeg concat + faststart), as the node reports it. */
          minProducedSpeed: Math.min(...exports.map((e) => e.producedSpeed)),
          /** Request to the last byte received over loopback (the download included). */
          minSpeed: Math.min(...exports.map((e) => e.speed)),
          budgetSpeed: exportBudgetSpeed,
          withinBudget: Math.min(...exports.map((e) => e.producedSpeed)) >= exportBudgetSpeed
        }
      }
      yield* Effect.promise(async () => {
        await fs.mkdir(options.resultsDir, { recursive: true })
        await fs.writeFile(path.join(options.resultsDir, "playback.json"), `${JSON.stringify(result, null, 2)}\n`)
        await fs.writeFile(path.join(options.resultsDir, "playback.md"), toMarkdown(result))
      })
      yield* Effect.logInfo("playback bench done").pipe(Effect.annotateLogs({
        playlistP95Ms: result.playlist.firstByteMs.p95,
        exportMinProducedSpeed: Math.round(result.export.minProducedSpeed),
        exportMinEndToEndSpeed: Math.round(result.export.minSpeed)
      }))
      return result
    }).pipe(Effect.provide(Node.layer(config)))
  }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

type Result = {
  readonly at: string
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string }
  readonly segment: { readonly seconds: number; readonly bytes: number }
  readonly playlist: {
    readonly segments: number
    readonly bytes: number
    readonly requests: number
    readonly firstByteMs: { readonly p50: number; readonly p95: number; readonly max: number }
    readonly budgetMs: number
    readonly withinBudget: boolean
  }
  readonly export: {
    readonly runs: ReadonlyArray<{
      readonly seconds: number
      readonly producedSeconds: number
      readonly bytes: number
      readonly speed: number
      readonly producedSpeed: number
      readonly durationSeconds: number
    }>
    readonly minProducedSpeed: number
    readonly minSpeed: number
    readonly budgetSpeed: number
    readonly withinBudget: boolean
  }
}

export const toMarkdown = (result: Result) => `# Playback benchmark

${result.at} · ${result.machine.cpus} × ${result.machine.cpuModel} · Node ${result.machine.node}

One node in process, embedded Postgres, filesystem store; segments of ${result.segment.seconds.toFixed(1)} s
(${(result.segment.bytes / 1e6).toFixed(1)} MB, 1280×720 H.264 at 1 Mbit/s).

## Playlist for 24 h (${result.playlist.segments} segments)

| measure | value | budget |
|---|---|---|
| time to first byte, p50 | ${result.playlist.firstByteMs.p50.toFixed(1)} ms | |
| time to first byte, p95 | ${result.playlist.firstByteMs.p95.toFixed(1)} ms | ≤ ${result.playlist.budgetMs} ms ${result.playlist.withinBudget ? "✅" : "❌"} |
| time to first byte, max | ${result.playlist.firstByteMs.max.toFixed(1)} ms | |
| playlist size | ${(result.playlist.bytes / 1024).toFixed(0)} KiB | |

${result.playlist.requests} requests after 5 warm-up requests, one at a time.

## MP4 export of 1 h (60 segments, stream copy, faststart)

| run | making the MP4 | speed | budget | request to last byte (download over loopback included) | end-to-end speed | MP4 | MP4 duration |
|---|---|---|---|---|---|---|---|
${result.export.runs.map((run, i) =>
  `| ${i + 1} | ${run.producedSeconds.toFixed(2)} s | ${Math.round(run.producedSpeed)}× | ≥ ${result.export.budgetSpeed}× ${run.producedSpeed >= result.export.budgetSpeed ? "✅" : "❌"} | ${run.seconds.toFixed(2)} s | ${Math.round(run.speed)}× | ${(run.bytes / 1e6).toFixed(0)} MB | ${run.durationSeconds.toFixed(1)} s |`
).join("\n")}

"Making the MP4" is the node's own time for the export (index query, ffmpeg concat demuxer with stream copy
and \`+faststart\`), from its \`X-Export-Ms\` header; the budget is judged on it. The end-to-end column adds
streaming the file to the client over loopback.
`
