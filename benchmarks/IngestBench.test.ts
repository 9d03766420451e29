import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ffmpegPath, sharedClipDir } from "../protocols/rtsp/testing/SharedClip.ts"
import { runIngestBench } from "./IngestBench.ts"
import { jpegSize } from "../protocols/jpeg/JpegSize.ts"
import { parseMetrics } from "./NodeUnderTest.ts"
import { pssBytes, sampleChildren } from "./ProcessSampler.ts"

describe("IngestBench", () => {
  it.live("runs a node and a simulator as processes, ingests 2 cameras and writes the results", () =>
    Effect.gen(function*() {
      const resultsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "vms-bench-ingest-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(resultsDir, { recursive: true, force: true })))
      const run = yield* runIngestBench({
        cameras: 2,
        durationSeconds: 5,
        // The fps gauge starts once a camera is online and needs a few progress reports.
        warmupSeconds: 4,
        baselineSeconds: 2,
        snapshotRequests: 20,
        snapshotIntervalMs: 50,
        dataDir: sharedClipDir,
        ffmpegPath,
        resultsDir
      })
      const json = JSON.parse(Fs.readFileSync(Path.join(resultsDir, "ingest.json"), "utf8"))
      const written = json.runs["2"]
      assert.strictEqual(written.cameras, 2)
      assert.strictEqual(written.online.atEnd, 2)
      assert.deepStrictEqual(written.streams.stalled, [], JSON.stringify(written.streams))
      assert.isTrue(written.streams.fpsMin >= 7.5 && written.streams.fpsMedian < 16, JSON.stringify(written.streams))
      assert.strictEqual(written.ffmpeg.processes, 2)
      assert.isAbove(written.ffmpeg.cpuPercent, 0)
      assert.isAbove(written.ffmpeg.pssMegabytes, 1)
      assert.isAbove(written.node.loadedHeapMegabytes, 5)
      assert.isAbove(written.node.loadedCpuPercent, 0)
      assert.strictEqual(written.snapshot.validJpeg, 20)
      assert.strictEqual(written.snapshot.sizeMatches, 20)
      assert.isAbove(written.snapshot.latencyMs.p50, 0)
      assert.strictEqual(written.shutdown.ffmpegsLeft, 0)
      assert.strictEqual(written.shutdown.exitCode, 0)
      assert.strictEqual(written.machine.node, process.version)
      assert.deepStrictEqual(written, JSON.parse(JSON.stringify(run)))
      const markdown = Fs.readFileSync(Path.join(resultsDir, "ingest.md"), "utf8")
      assert.match(markdown, /^\| 2 \| 2 \| /m)
      assert.include(markdown, "## Method")
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), 90_000)

  it("reads the frame size of a JPEG and rejects truncated ones", () => {
    // SOI, APP0 (length 4), SOF0 (8 bits, 720 rows, 1280 columns), EOI.
    const jpeg = Uint8Array.from([
      0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00,
      0xff, 0xc0, 0x00, 0x0b, 0x08, 0x02, 0xd0, 0x05, 0x00, 0x01, 0x01, 0x11, 0x00,
      0xff, 0xd9
    ])
    assert.deepStrictEqual(jpegSize(jpeg), { width: 1280, height: 720 })
    assert.isUndefined(jpegSize(jpeg.slice(0, -2)))
    assert.isUndefined(jpegSize(Uint8Array.from([0x89, 0x50, 0x4e, 0x47])))
  })

  it("parses Prometheus samples with labels", () => {
    const samples = parseMetrics([
      "# HELP vms_cameras Cameras",
      "vms_cameras{status=\"online\"} 3",
      "vms_camera_fps{camera=\"cam0\"} 14.9",
      "nodejs_heap_size_used_bytes 62219976"
    ].join("\n"))
    assert.deepStrictEqual(samples.map((s) => [s.name, s.labels, s.value]), [
      ["vms_cameras", { status: "online" }, 3],
      ["vms_camera_fps", { camera: "cam0" }, 14.9],
      ["nodejs_heap_size_used_bytes", {}, 62219976]
    ])
  })

  it.live("lists a process's children and reads their PSS", () =>
    Effect.gen(function*() {
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => spawn("sleep", ["5"])),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      const children = yield* sampleChildren(process.pid)
      assert.deepInclude(children.map(({ name, pid }) => ({ name, pid })), { pid: child.pid!, name: "sleep" })
      assert.isAbove(yield* pssBytes(child.pid!), 0)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))
})
