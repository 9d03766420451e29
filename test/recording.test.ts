/**
 * Recording on a whole in-process node with the simulator, real ffmpeg,
 * Postgres and the filesystem store, with 4 s segments
 * (`VMS_RECORDING_SEGMENT_SECONDS`) so a few seconds prove what 60 s
 * segments do in minutes: wall-clock segments that abut, one index row and
 * one object each, recording toggled without a second RTSP session or a
 * live interruption, a dropped camera leaving a gap.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { NodeConfig } from "../runtime/config/NodeConfig.ts"
import * as Node from "../runtime/Node.ts"
import { spawnSync } from "node:child_process"
import { requireBinary } from "./support/Binaries.ts"
import { eventually } from "./support/Eventually.ts"
import { request } from "./support/NodeHttp.ts"
import { gapAfter, probe, rowsOf, spoolFiles, statusOf, waitRows, waitStatus } from "./support/Recordings.ts"
import { testConfig } from "./support/TestNode.ts"

const segmentSeconds = 4

const node = Layer.unwrap(
  Effect.map(testConfig({ VMS_RECORDING_SEGMENT_SECONDS: String(segmentSeconds) }), (config) => Node.layer(config))
).pipe(Layer.provideMerge(NodeServices.layer))

describe("recording on a node (filesystem store)", () => {
  it.live("records wall-clock segments that abut, one row and one object each; toggling recording keeps one RTSP session and live online", () =>
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const created = yield* request("POST", "/api/v1/cameras", { id: "dock", name: "Dock", url: simulator.url(0), recording: true })
      assert.strictEqual(created.status, 201, created.text)
      yield* waitStatus("dock", "online", 8_000)

      const rows = yield* waitRows("dock", 5, 30_000)
      for (const row of rows) {
        assert.strictEqual(row.nodeId, "test-node")
        assert.deepStrictEqual([row.codec, row.width, row.height], ["h264", 1280, 720])
        assert.strictEqual(row.durationMs, row.endMs - row.startMs)
        const object = path.join(config.dataDir, "recordings", row.objectKey)
        assert.strictEqual(fs.statSync(object).size, row.bytes, row.objectKey)
        const probed = yield* probe(object)
        assert.deepStrictEqual(probed.streams, [["h264", 1280, 720]])
        assert.approximately(probed.durationSeconds, row.durationMs / 1000, 0.3, row.objectKey)
      }
      for (let i = 1; i < rows.length; i++) {
        // One run: each segment starts where the previous ended, on a wall-clock boundary (± half a chunk;
        // ffmpeg's first chunk can be 2 s long, so the first cut may be later).
        assert.strictEqual(rows[i]!.startMs, rows[i - 1]!.endMs)
        if (i === 1) continue
        const offset = rows[i]!.startMs % (segmentSeconds * 1000)
        assert.isTrue(offset <= 700 || offset >= segmentSeconds * 1000 - 700, `segment ${i} starts ${offset} ms past a boundary`)
        if (i < rows.length - 1) assert.approximately(rows[i]!.durationMs, segmentSeconds * 1000, 1_100)
      }

      // Recording off: the open segment is closed and stored, the spool empties, live carries on.
      const off = yield* request("PATCH", "/api/v1/cameras/dock", { recording: false })
      assert.strictEqual(off.status, 200, off.text)
      const stoppedAt = Date.now()
      yield* eventually("spool empty", Effect.sync(() => spoolFiles(config.dataDir, "dock").length === 0 ? true : undefined), 10_000, 100)
      const afterOff = yield* rowsOf("dock")
      assert.isAtMost(afterOff.at(-1)!.endMs, stoppedAt + 1_000)
      assert.strictEqual((yield* statusOf("dock")).status, "online")
      assert.strictEqual((yield* request("GET", "/live/dock/index.m3u8")).status, 200)

      // On again (POST …/recording): new segments, never overlapping the old ones, still the one RTSP session.
      const on = yield* request("POST", "/api/v1/cameras/dock/recording", { enabled: true })
      assert.strictEqual(on.status, 200, on.text)
      assert.isTrue(on.json().recording)
      const resumed = yield* waitRows("dock", afterOff.length + 1, 15_000)
      assert.isAtLeast(resumed[afterOff.length]!.startMs, afterOff.at(-1)!.endMs)
      const stats = yield* simulator.stats
      assert.strictEqual(stats.connectionsAccepted, 1)

      const metrics = yield* request("GET", "/metrics")
      assert.match(metrics.text, /vms_recording_segments_total\{camera="dock"\} \d+/)
      assert.match(metrics.text, /vms_recording_bytes_total\{camera="dock"\} \d{5,}/)
      assert.match(metrics.text, /vms_recording_upload_seconds_count \d+/)
      assert.match(metrics.text, /vms_recording_backlog_segments 0/)
      // promtool finds nothing in the recording metrics (only its unit lint on the camera metric the product named).
      const check = spawnSync(requireBinary("promtool"), ["check", "metrics"], { input: metrics.text, encoding: "utf8" })
      const problems = (check.stdout + check.stderr).split("\n").filter((line) => line.trim() !== "" && !line.startsWith("vms_camera_ingest_bitrate_bits"))
      assert.deepStrictEqual(problems, [])
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("a camera dropped mid-segment leaves a gap between rows, counted in vms_recording_gaps_total", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const created = yield* request("POST", "/api/v1/cameras", { id: "pier", name: "Pier", url: simulator.url(0), recording: true })
      assert.strictEqual(created.status, 201, created.text)
      yield* waitStatus("pier", "online", 8_000)
      yield* waitRows("pier", 1, 15_000)
      yield* simulator.drop(0)
      yield* eventually("pier reconnected", Effect.map(simulator.stats, (s) => s.connectionsAccepted >= 2 && s.playing === 1 ? true : undefined), 15_000, 100)
      const rows = yield* eventually("a gap between two rows", Effect.map(rowsOf("pier"), (rows) => gapAfter(rows) === undefined ? undefined : rows), 25_000, 200)
      assert.isAtLeast(rows.length, 2)
      const metrics = yield* request("GET", "/metrics")
      assert.match(metrics.text, /vms_recording_gaps_total\{camera="pier"\} [1-9]/)
    }).pipe(Effect.scoped, Effect.provide(node)))
})
