import { assert, describe, it } from "@effect/vitest"
import { concatList, recordedMs } from "./Exporter.ts"
import type { RecordedSegment } from "./RecordingIndex.ts"

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const segment = (id: string, startMs: number, durationMs: number): RecordedSegment => ({
  id, cameraId: "dock", startMs, endMs: startMs + durationMs, durationMs, bytes: 1, objectKey: `k${id}`,
  codec: "h264", width: 1, height: 1, nodeId: "n"
})

describe("Exporter", () => {
  it("clips the first and last segments with inpoint/outpoint in each file's timestamps, and quotes paths", () => {
    const segments = [segment("1", t0, 60_000), segment("2", t0 + 60_000, 60_000), segment("3", t0 + 125_000, 60_000)]
    const list = concatList(
      segments.map((s, i) => ({ segment: s, source: `/data/it's/${s.id}.ts`, startSeconds: [1.4, 61.4, 2][i]! })),
      t0 + 12_500,
      t0 + 170_000
    )
    assert.strictEqual(list, [
      "ffconcat version 1.0",
      "file '/data/it'\\''s/1.ts'",
      "inpoint 13.900",
      "file '/data/it'\\''s/2.ts'",
      "file '/data/it'\\''s/3.ts'",
      "outpoint 47.000",
      ""
    ].join("\n"))
    // 47.5 s + 60 s + 45 s: the gap is not in the file.
    assert.strictEqual(recordedMs(segments, t0 + 12_500, t0 + 170_000), 152_500)
  })
})
