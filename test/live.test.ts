/**
 * A whole node with the simulator and real ffmpeg: cameras added through the
 * REST API go live; the live playlist is continuous H.264 for ffprobe and
 * plays in hls.js in headless Chromium; faults on one camera leave the
 * others online.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { spawnSync } from "node:child_process"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import * as Node from "../runtime/Node.ts"
import { requireBinary } from "./support/Binaries.ts"
import { launchChromium } from "./support/Browser.ts"
import { processesMentioning } from "./support/NodeProcess.ts"
import { eventually } from "./support/Eventually.ts"
import { testConfig } from "./support/TestNode.ts"

const node = Layer.unwrap(Effect.map(testConfig(), (config) => Node.layer(config))).pipe(
  Layer.provideMerge(NodeServices.layer)
)

const baseUrl = Effect.map(HttpServer.HttpServer, (server) => NetAddress.formatUrlUnsafe(server.address))

const request = (method: string, path: string, body?: unknown) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      })
      const text = await response.text()
      return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, any> }
    }))

const addCamera = (id: string, url: string) =>
  Effect.gen(function*() {
    const response = yield* request("POST", "/api/v1/cameras", { id, name: `Camera ${id}`, url })
    assert.strictEqual(response.status, 201, response.text)
  })

const statusOf = (id: string) => Effect.map(request("GET", `/api/v1/cameras/${id}/status`), (r) => r.json())

const waitStatus = (id: string, status: string, timeoutMs: number) =>
  eventually(`${id} ${status}`, Effect.map(statusOf(id), (s) => s.status === status ? s : undefined), timeoutMs)

describe("live cameras on a node", () => {
  it.live("a camera added over REST is online within 5 s and its live playlist is continuous H.264 for ffprobe", () =>
    Effect.gen(function*() {
      const ffprobe = requireBinary("ffprobe")
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const added = Date.now()
      yield* addCamera("lobby", simulator.url(0))
      const online = yield* waitStatus("lobby", "online", 5_000)
      assert.isBelow(Date.now() - added, 5_000)
      assert.deepStrictEqual(online.video, { codec: "h264", width: 1280, height: 720 })

      const playlist = yield* request("GET", "/live/lobby/index.m3u8")
      assert.strictEqual(playlist.status, 200)
      assert.strictEqual(playlist.headers.get("content-type"), "application/vnd.apple.mpegurl")
      assert.match(playlist.headers.get("cache-control") ?? "", /no-cache/)
      const segmentName = /seg_\d+\.ts/.exec(playlist.text)![0]
      const segment = yield* request("GET", `/live/lobby/${segmentName}`)
      assert.strictEqual(segment.status, 200)
      assert.strictEqual(segment.headers.get("content-type"), "video/mp2t")

      // ffprobe follows the live playlist for 6 s of media: one H.264 stream, no gap between packets.
      const base = yield* baseUrl
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const output = yield* spawner.string(ChildProcess.make(ffprobe, [
        "-v", "error", "-read_intervals", "%+6",
        "-show_entries", "stream=codec_name,width,height:packet=pts_time",
        "-of", "json", `${base}/live/lobby/index.m3u8`
      ]))
      const probe = JSON.parse(output) as { streams: Array<{ codec_name: string; width: number; height: number }>; packets: Array<{ pts_time: string }> }
      assert.deepStrictEqual(probe.streams.map((s) => [s.codec_name, s.width, s.height]), [["h264", 1280, 720]])
      const times = probe.packets.map((p) => Number(p.pts_time))
      assert.isAtLeast(times.at(-1)! - times[0]!, 5)
      for (let i = 1; i < times.length; i++) assert.isBelow(Math.abs(times[i]! - times[i - 1]!), 0.5, `gap at packet ${i}`)
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("hls.js in headless Chromium plays the live stream in step with the clock", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      yield* addCamera("yard", simulator.url(0))
      yield* waitStatus("yard", "online", 5_000)
      const browser = yield* launchChromium
      const page = yield* Effect.promise(() => browser.newPage())
      const base = yield* baseUrl
      yield* Effect.promise(() => page.goto(`${base}/player/yard`))
      const currentTime = Effect.promise(() => page.evaluate<number>(`document.querySelector("video").currentTime`))
      const start = yield* eventually("playback started", Effect.map(currentTime, (t) => t > 0 ? t : undefined), 15_000, 100)
      const startedAt = Date.now()
      const advanced = yield* eventually("4 s of playback", Effect.map(currentTime, (t) => t - start >= 4 ? t : undefined), 10_000, 100)
      const wall = (Date.now() - startedAt) / 1000
      // Media time keeps pace with the wall clock (no stalls, no fast-forward).
      assert.approximately(advanced - start, wall, 1.5)
      const state = yield* Effect.promise(() =>
        page.evaluate<{ paused: boolean; width: number; height: number }>(
          `(() => { const v = document.querySelector("video"); return { paused: v.paused, width: v.videoWidth, height: v.videoHeight } })()`
        ))
      assert.deepStrictEqual(state, { paused: false, width: 1280, height: 720 })
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("faults on one camera: drop comes back with a discontinuity, refusal turns to error, the others stay online", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 3 })
      yield* addCamera("c0", simulator.url(0))
      yield* addCamera("c1", simulator.url(1))
      yield* addCamera("c2", simulator.url(2))
      yield* Effect.forEach(["c0", "c1", "c2"], (id) => waitStatus(id, "online", 8_000), { concurrency: 3 })

      yield* simulator.refuse(0)
      yield* simulator.drop(0)
      yield* eventually("c0 left online", Effect.map(statusOf("c0"), (s) => s.status !== "online" ? s : undefined), 5_000)
      yield* simulator.resume(0)
      yield* waitStatus("c0", "online", 10_000)
      yield* eventually("discontinuity in c0's playlist", Effect.map(request("GET", "/live/c0/index.m3u8"), (r) =>
        r.text.includes("#EXT-X-DISCONTINUITY\n") ? true : undefined), 5_000)

      yield* simulator.refuse(1)
      yield* simulator.drop(1)
      const error = yield* waitStatus("c1", "error", 10_000)
      assert.match(error.reason, /5XX|503|Service Unavailable/i)
      assert.strictEqual((yield* statusOf("c2")).status, "online")
      assert.strictEqual((yield* statusOf("c0")).status, "online")

      // A bad URL: the camera shows the reason; the node and the other cameras carry on.
      yield* addCamera("bad", `rtsp://127.0.0.1:${simulator.port}/no-such-mount`)
      const bad = yield* waitStatus("bad", "error", 10_000)
      assert.match(bad.reason, /404|Not Found/i)
      assert.strictEqual((yield* statusOf("c2")).status, "online")
      const metrics = yield* request("GET", "/metrics")
      assert.match(metrics.text, /vms_cameras\{status="error"\} 2/)
      assert.match(metrics.text, /vms_pipeline_restarts_total\{camera="c0"\} [1-9]/)
      assert.match(metrics.text, /vms_camera_fps\{camera="c2"\} 1\d/)
      assert.match(metrics.text, /vms_camera_ingest_bytes_total\{camera="c2"\} \d{5,}/)
      // promtool finds nothing but its unit lint on the name the product promised (see CameraMetrics).
      const check = spawnSync(requireBinary("promtool"), ["check", "metrics"], { input: metrics.text, encoding: "utf8" })
      const problems = (check.stdout + check.stderr).split("\n").filter((line) => line.trim() !== "")
      assert.deepStrictEqual(problems, ['vms_camera_ingest_bitrate_bits use base unit "bytes" instead of "bits"'])
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("PATCH enabled=false and DELETE stop the camera's ffmpeg within 2 s; unknown ids answer 404", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 2 })
      yield* addCamera("door", simulator.url(0))
      yield* addCamera("hall", simulator.url(1))
      yield* waitStatus("door", "online", 8_000)
      yield* waitStatus("hall", "online", 8_000)
      const ffmpegFor = (url: string) => Effect.map(processesMentioning(url), (found) => found.filter((p) => p.includes("seg_%d.ts")))
      assert.lengthOf(yield* ffmpegFor(simulator.url(0)), 1)

      const disabledAt = Date.now()
      const patched = yield* request("PATCH", "/api/v1/cameras/door", { enabled: false })
      assert.strictEqual(patched.status, 200, patched.text)
      yield* eventually("door's ffmpeg gone", Effect.map(ffmpegFor(simulator.url(0)), (p) => p.length === 0 ? true : undefined), 2_000)
      assert.isBelow(Date.now() - disabledAt, 2_000)
      assert.strictEqual((yield* statusOf("door")).status, "disabled")
      assert.strictEqual((yield* request("GET", "/live/door/index.m3u8")).status, 404)
      assert.strictEqual((yield* request("GET", "/api/v1/cameras/door/snapshot")).status, 503)

      const deletedAt = Date.now()
      assert.strictEqual((yield* request("DELETE", "/api/v1/cameras/hall")).status, 204)
      yield* eventually("hall's ffmpeg gone", Effect.map(ffmpegFor(simulator.url(1)), (p) => p.length === 0 ? true : undefined), 2_000)
      assert.isBelow(Date.now() - deletedAt, 2_000)

      for (const [method, path] of [["GET", "/api/v1/cameras/hall"], ["GET", "/api/v1/cameras/hall/status"], ["GET", "/api/v1/cameras/hall/snapshot"], ["DELETE", "/api/v1/cameras/hall"], ["PATCH", "/api/v1/cameras/nope"]] as const) {
        const response = yield* request(method, path, method === "PATCH" ? { name: "x" } : undefined)
        assert.strictEqual(response.status, 404, `${method} ${path}: ${response.text}`)
        assert.strictEqual(response.json().error.code, "CameraNotFound")
      }
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("live routes reject names outside their patterns", () =>
    Effect.gen(function*() {
      for (const path of ["/live/../etc/index.m3u8", "/live/x/..%2F..%2Fetc%2Fpasswd", "/live/x/seg_1.ts", "/live/x/index.m3u8", "/live/%2e%2e/seg_1.ts", "/live/x/seg_1.ts.bak"]) {
        const response = yield* request("GET", path)
        assert.strictEqual(response.status, 404, path)
      }
    }).pipe(Effect.scoped, Effect.provide(node)))
})
