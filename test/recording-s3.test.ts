/**
 * Recording to S3 (s3rver) on a whole in-process node with 4 s segments:
 * segments land in the bucket with their rows; while s3rver is down the
 * spool keeps growing (backlog metrics, a spool alert), and once it is back
 * the backlog drains: every segment present, none duplicated, no gap.
 * The outage is scaled down from the 2 minutes (60 s segments) to
 * about 5 segments of 4 s.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { type RecordingAlert, EventBus } from "../runtime/events/EventBus.ts"
import * as Node from "../runtime/Node.ts"
import { SegmentStore } from "../runtime/recording/SegmentStore.ts"
import { eventually } from "./support/Eventually.ts"
import { request } from "./support/NodeHttp.ts"
import { addRecordingCamera, probe, rowsOf, waitRows, waitStatus } from "./support/Recordings.ts"
import { startS3rver } from "./support/S3rver.ts"
import { testConfig } from "./support/TestNode.ts"

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN)

describe("recording to S3", () => {
  it.live("an s3rver outage grows the backlog and raises a spool alert; after it returns every segment is stored once", () =>
    Effect.gen(function*() {
      const s3 = yield* startS3rver()
      const config = yield* testConfig({
        ...s3.env,
        VMS_RECORDING_SEGMENT_SECONDS: "4",
        VMS_RECORDING_SPOOL_ALERT_BYTES: "1000000"
      })
      yield* Effect.gen(function*() {
        const alerts: Array<RecordingAlert> = []
        const bus = yield* EventBus
        yield* bus.subscribe.pipe(
          Stream.runForEach((event) => Effect.sync(() => {
            if (event._tag === "RecordingAlert") alerts.push(event)
          })),
          Effect.forkScoped
        )
        const simulator = yield* startTestSimulator({ cameras: 1 })
        yield* addRecordingCamera("wharf", simulator.url(0))
        yield* waitStatus("wharf", "online", 8_000)
        const before = yield* waitRows("wharf", 2, 20_000)

        yield* s3.stop
        const backlog = yield* eventually("backlog of 4 segments", Effect.map(request("GET", "/metrics"), (r) => {
          const segments = metric(r.text, "vms_recording_backlog_segments")
          return segments >= 4 ? { segments, bytes: metric(r.text, "vms_recording_backlog_bytes") } : undefined
        }), 40_000, 250)
        assert.isAbove(backlog.bytes, 1_000_000)
        assert.isTrue(alerts.some((a) => a.kind === "spool-threshold" && a.nodeId === "test-node"))
        const during = yield* rowsOf("wharf")
        assert.isAtMost(during.length, before.length + 1)

        yield* s3.start
        yield* eventually("backlog drained", Effect.map(request("GET", "/metrics"), (r) =>
          metric(r.text, "vms_recording_backlog_segments") === 0 ? true : undefined), 40_000, 250)
        const rows = yield* rowsOf("wharf")
        assert.isAtLeast(rows.length, before.length + backlog.segments)
        for (let i = 1; i < rows.length; i++) assert.strictEqual(rows[i]!.startMs, rows[i - 1]!.endMs, `row ${i} follows row ${i - 1}`)
        assert.strictEqual(new Set(rows.map((r) => r.objectKey)).size, rows.length)
        const store = yield* SegmentStore
        for (const row of rows) assert.isTrue(yield* store.exists(row.objectKey), row.objectKey)
        // A stored object is whole: ffprobe reads its full duration through a presigned URL.
        const source = yield* store.source(rows[1]!.objectKey, 60)
        assert.strictEqual(source._tag, "Url")
        const probed = yield* probe((source as { url: string }).url)
        assert.approximately(probed.durationSeconds, rows[1]!.durationMs / 1000, 0.3)

        // Playback through the node redirects each segment to a presigned URL.
        const playlist = yield* request("GET", `/playback/wharf/index.m3u8?from=${new Date(rows[0]!.startMs).toISOString()}&to=${new Date(rows.at(-1)!.endMs).toISOString()}`)
        assert.strictEqual(playlist.status, 200, playlist.text)
        const uri = playlist.text.split("\n").find((line) => line.startsWith("segments/"))!
        const segment = yield* request("GET", `/playback/wharf/${uri}`)
        assert.strictEqual(segment.status, 200)
        assert.strictEqual(segment.bytes.length, rows[0]!.bytes)
      }).pipe(Effect.provide(Node.layer(config)), Effect.provide(NodeServices.layer))
    }).pipe(Effect.scoped))
})
