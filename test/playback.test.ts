/**
 * Playback of recordings on a whole in-process node (simulator, real
 * ffmpeg, Postgres, filesystem store, 4 s segments): the VOD playlist is
 * read by ffprobe straight through with no timestamp jump beyond one frame
 * except at gaps, marked by discontinuities; segment URLs need their signed
 * token and honour byte ranges; hls.js in headless Chromium plays across a
 * gap; a range with nothing recorded is 404.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { NodeConfig } from "../runtime/config/NodeConfig.ts"
import * as Node from "../runtime/Node.ts"
import { launchChromium } from "./support/Browser.ts"
import { eventually } from "./support/Eventually.ts"
import { baseUrl, request } from "./support/NodeHttp.ts"
import { processesMentioning } from "./support/NodeProcess.ts"
import { addRecordingCamera, gapAfter, probe, rowsOf, timestampJumps, waitRows, waitStatus } from "./support/Recordings.ts"
import { testConfig } from "./support/TestNode.ts"

const node = Layer.unwrap(
  Effect.map(testConfig({ VMS_RECORDING_SEGMENT_SECONDS: "4" }), (config) => Node.layer(config))
).pipe(Layer.provideMerge(NodeServices.layer))

const iso = (ms: number) => new Date(ms).toISOString()
/** The simulator's clip runs at 15 fps. */
const frameSeconds = 1 / 15

describe("playback of recordings", () => {
  it.live("the playlist plays straight through for ffprobe; segments need their token and honour Range; empty ranges are 404", () =>
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const simulator = yield* startTestSimulator({ cameras: 1 })
      yield* addRecordingCamera("quay", simulator.url(0))
      yield* waitStatus("quay", "online", 8_000)
      const all = yield* waitRows("quay", 4, 30_000)
      // From 1.5 s into the first segment of at least 3 s (the first ones after a start can be short).
      const rows = all.slice(all.findIndex((row) => row.durationMs >= 3_000))
      const from = rows[0]!.startMs + 1_500
      const to = rows.at(-1)!.endMs
      const playlist = yield* request("GET", `/playback/quay/index.m3u8?from=${iso(from)}&to=${iso(to)}`)
      assert.strictEqual(playlist.status, 200, playlist.text)
      assert.strictEqual(playlist.headers.get("content-type"), "application/vnd.apple.mpegurl")
      assert.include(playlist.text, "#EXT-X-PLAYLIST-TYPE:VOD")
      assert.include(playlist.text, "#EXT-X-START:TIME-OFFSET=1.500,PRECISE=YES")
      assert.strictEqual(playlist.text.match(/#EXT-X-PROGRAM-DATE-TIME:/g)?.length, rows.length)
      assert.include(playlist.text, `#EXT-X-PROGRAM-DATE-TIME:${iso(rows[1]!.startMs)}`)
      assert.notInclude(playlist.text, "#EXT-X-DISCONTINUITY")
      assert.isTrue(playlist.text.endsWith("#EXT-X-ENDLIST\n"))

      // ffprobe reads the whole playlist: one H.264 stream, every step at most a frame (and a bit).
      const base = yield* baseUrl
      const probed = yield* probe(`${base}/playback/quay/index.m3u8?from=${iso(from)}&to=${iso(to)}`)
      assert.deepStrictEqual(probed.streams, [["h264", 1280, 720]])
      const recordedSeconds = rows.reduce((sum, row) => sum + row.durationMs, 0) / 1000
      assert.approximately(probed.times.at(-1)! - probed.times[0]!, recordedSeconds, 0.5)
      assert.deepStrictEqual(timestampJumps(probed.times, frameSeconds * 1.5), [])

      // Segment URLs: the signed one works (also by byte range); without or with another's token, 403.
      const uris = playlist.text.split("\n").filter((line) => line.startsWith("segments/"))
      const first = yield* request("GET", `/playback/quay/${uris[0]}`)
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("content-type"), "video/mp2t")
      const object = fs.readFileSync(path.join(config.dataDir, "recordings", rows[0]!.objectKey))
      assert.strictEqual(first.bytes.length, object.length)
      const ranged = yield* request("GET", `/playback/quay/${uris[0]}`, undefined, { range: "bytes=188-375" })
      assert.strictEqual(ranged.status, 206)
      assert.strictEqual(ranged.headers.get("content-range"), `bytes 188-375/${object.length}`)
      assert.deepStrictEqual(Buffer.from(ranged.bytes), object.subarray(188, 376))
      const [firstPath, firstToken] = uris[0]!.split("?token=")
      const secondPath = uris[1]!.split("?token=")[0]
      for (const forged of [firstPath, `${secondPath}?token=${firstToken}`, `${firstPath}?token=1.${"A".repeat(43)}`]) {
        const response = yield* request("GET", `/playback/quay/${forged}`)
        assert.strictEqual(response.status, 403, forged)
        assert.strictEqual(response.json().error.code, "Forbidden")
      }

      const empty = yield* request("GET", `/playback/quay/index.m3u8?from=${iso(from - 3_600_000)}&to=${iso(from - 3_000_000)}`)
      assert.strictEqual(empty.status, 404)
      assert.strictEqual(empty.json().error.code, "NoRecording")
      const bad = yield* request("GET", `/playback/quay/index.m3u8?from=yesterday&to=${iso(to)}`)
      assert.strictEqual(bad.status, 400)
      assert.match(bad.json().error.message, /^from: /)
      const backwards = yield* request("GET", `/playback/quay/index.m3u8?from=${iso(to)}&to=${iso(from)}`)
      assert.match(backwards.json().error.message, /^to: must be after from/)
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("across a gap: a discontinuity in the playlist, timestamps jump only there, and hls.js in Chromium plays through it", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      yield* addRecordingCamera("ramp", simulator.url(0))
      yield* waitStatus("ramp", "online", 8_000)
      yield* waitRows("ramp", 1, 15_000)
      // SIGKILL the camera's ffmpeg mid-segment: the pipeline restarts it after its backoff.
      const ffmpeg = (yield* processesMentioning(simulator.url(0))).filter((p) => p.includes("seg_%d.ts"))
      assert.lengthOf(ffmpeg, 1)
      process.kill(Number(ffmpeg[0]!.split(":")[0]), "SIGKILL")
      const rows = yield* eventually("two rows after a gap", Effect.map(rowsOf("ramp"), (rows) => {
        const after = gapAfter(rows)
        return after !== undefined && rows.length >= after + 2 ? rows : undefined
      }), 30_000, 200)
      const after = gapAfter(rows)!
      const gapStart = rows[after - 1]!.endMs
      const gapEnd = rows[after]!.startMs
      const timeline = yield* request("GET", `/api/v1/cameras/ramp/timeline?from=${iso(rows[0]!.startMs)}&to=${iso(rows.at(-1)!.endMs)}`)
      assert.deepInclude(timeline.json().gaps, { start: iso(gapStart), end: iso(gapEnd) })

      const from = gapStart - 2_000
      const to = rows[after + 1]!.endMs
      const url = `/playback/ramp/index.m3u8?from=${iso(from)}&to=${iso(to)}`
      const playlist = yield* request("GET", url)
      assert.strictEqual(playlist.status, 200, playlist.text)
      assert.strictEqual(playlist.text.match(/#EXT-X-DISCONTINUITY\n/g)?.length, 1)
      const base = yield* baseUrl
      const probed = yield* probe(`${base}${url}`)
      assert.isAtMost(timestampJumps(probed.times, frameSeconds * 1.5).length, 1)

      // hls.js starts 2 s before the gap and plays on past it.
      const browser = yield* launchChromium
      const page = yield* Effect.promise(() => browser.newPage())
      yield* Effect.promise(() => page.goto(`${base}/health/live`))
      yield* Effect.promise(() => page.evaluate(`new Promise((resolve, reject) => {
        const script = document.createElement("script")
        script.src = "/assets/hls.min.js"
        script.onload = () => {
          const video = document.createElement("video")
          video.muted = true
          video.autoplay = true
          document.body.appendChild(video)
          const hls = new Hls()
          window.errors = []
          hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) window.errors.push(data.details) })
          hls.loadSource(${JSON.stringify(url)})
          hls.attachMedia(video)
          resolve(undefined)
        }
        script.onerror = reject
        document.head.appendChild(script)
      })`))
      const state = Effect.promise(() =>
        page.evaluate<{ time: number; errors: Array<string> }>(`({ time: document.querySelector("video").currentTime, errors: window.errors })`)
      )
      const beforeGap = rows[after - 1]!
      // Media time of the first segment after the gap, in the playlist's timeline.
      const gapAtMedia = (beforeGap.endMs - rows.find((r) => r.endMs > from)!.startMs) / 1000
      const started = yield* eventually("playback started", Effect.map(state, (s) => s.time > 0 ? s : undefined), 15_000, 100)
      assert.isBelow(started.time, gapAtMedia)
      const crossed = yield* eventually("played 2 s past the gap", Effect.map(state, (s) => s.time > gapAtMedia + 2 ? s : undefined), 15_000, 100)
      assert.deepStrictEqual(crossed.errors, [])
    }).pipe(Effect.scoped, Effect.provide(node)))
})
