/**
 * MP4 export on a whole in-process node (simulator, real ffmpeg, Postgres,
 * filesystem store, 4 s segments): a range across a gap comes back as one
 * faststart MP4 whose duration is the recorded time in the range, as a
 * download with a file name, and byte ranges return 206 with the right
 * bytes.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import * as Node from "../runtime/Node.ts"
import { eventually } from "./support/Eventually.ts"
import { request } from "./support/NodeHttp.ts"
import { addRecordingCamera, gapAfter, probe, rowsOf, timestampJumps, waitRows, waitStatus } from "./support/Recordings.ts"
import { testConfig } from "./support/TestNode.ts"

const node = Layer.unwrap(
  Effect.map(testConfig({ VMS_RECORDING_SEGMENT_SECONDS: "4" }), (config) => Node.layer(config))
).pipe(Layer.provideMerge(NodeServices.layer))

const iso = (ms: number) => new Date(ms).toISOString()

describe("export of recordings", () => {
  it.live("a range across a gap exports as one faststart MP4 of the recorded time, with a file name and byte ranges", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      yield* addRecordingCamera("berth", simulator.url(0))
      yield* waitStatus("berth", "online", 8_000)
      yield* waitRows("berth", 2, 15_000)
      yield* simulator.drop(0)
      const rows = yield* eventually("two rows after a gap", Effect.map(rowsOf("berth"), (rows) => {
        const after = gapAfter(rows)
        return after !== undefined && rows.length >= after + 2 ? rows : undefined
      }), 30_000, 200)
      // From inside the first segment to inside the last: clipped at both ends, across the gap.
      const from = rows[0]!.startMs + 1_200
      const to = rows.at(-1)!.endMs - 1_300
      const recordedMs = rows.reduce((sum, r) => sum + Math.max(0, Math.min(to, r.endMs) - Math.max(from, r.startMs)), 0)
      const url = `/export/berth.mp4?from=${iso(from)}&to=${iso(to)}`
      const whole = yield* request("GET", url)
      assert.strictEqual(whole.status, 200, whole.text.slice(0, 200))
      assert.strictEqual(whole.headers.get("content-type"), "video/mp4")
      assert.strictEqual(whole.headers.get("accept-ranges"), "bytes")
      assert.match(whole.headers.get("content-disposition") ?? "", /^attachment; filename="berth_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.mp4"$/)
      assert.strictEqual(Number(whole.headers.get("x-recorded-ms")), recordedMs)

      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vms-export-")), "export.mp4")
      fs.writeFileSync(file, whole.bytes)
      const probed = yield* probe(file)
      fs.rmSync(path.dirname(file), { recursive: true, force: true })
      assert.deepStrictEqual(probed.streams, [["h264", 1280, 720]])
      // Stream copy starts on a keyframe: at most one 1 s GOP more than the range.
      assert.approximately(probed.durationSeconds, recordedMs / 1000, 1)
      assert.deepStrictEqual(timestampJumps(probed.times, 0.1), [])
      const text = Buffer.from(whole.bytes.subarray(0, 64 * 1024)).toString("latin1")
      assert.isAbove(text.indexOf("moov"), 0, "moov in the first 64 KiB")
      assert.isTrue(text.indexOf("mdat") === -1 || text.indexOf("moov") < text.indexOf("mdat"), "faststart: moov before mdat")

      const size = whole.bytes.length
      const ranged = yield* request("GET", url, undefined, { range: "bytes=1000-1999" })
      assert.strictEqual(ranged.status, 206)
      assert.strictEqual(ranged.headers.get("content-range"), `bytes 1000-1999/${size}`)
      assert.deepStrictEqual(ranged.bytes, whole.bytes.subarray(1000, 2000))
      const tail = yield* request("GET", url, undefined, { range: "bytes=-500" })
      assert.strictEqual(tail.status, 206)
      assert.deepStrictEqual(tail.bytes, whole.bytes.subarray(size - 500))
      const past = yield* request("GET", url, undefined, { range: `bytes=${size}-` })
      assert.strictEqual(past.status, 416)
      assert.strictEqual(past.headers.get("content-range"), `bytes */${size}`)

      const empty = yield* request("GET", `/export/berth.mp4?from=${iso(from - 7_200_000)}&to=${iso(from - 3_600_000)}`)
      assert.strictEqual(empty.status, 404)
      const bad = yield* request("GET", `/export/berth.mp4?from=${iso(from)}`)
      assert.strictEqual(bad.status, 400)
      assert.match(bad.json().error.message, /^to: is required/)
      const long = yield* request("GET", `/export/berth.mp4?from=${iso(from)}&to=${iso(from + 25 * 3_600_000)}`)
      assert.strictEqual(long.status, 400)
      assert.match(long.json().error.message, /^to: must be at most 24 hours after from/)
    }).pipe(Effect.scoped, Effect.provide(node)))
})
