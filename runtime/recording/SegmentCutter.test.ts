import { assert, describe, it } from "@effect/vitest"
import { type ChunkSeen, type OpenSegment, onChunk } from "./SegmentCutter.ts"

const minute = 60_000
const t0 = Date.UTC(2026, 0, 1, 12, 0, 0)

/** Feeds chunks, collecting the segments closed and the one left open. */
const feed = (chunks: ReadonlyArray<ChunkSeen>, segmentMs = minute) => {
  let current: OpenSegment | undefined
  const closed: Array<OpenSegment & { reason: string }> = []
  for (const chunk of chunks) {
    const decision = onChunk(current, chunk, segmentMs)
    if (decision.close !== undefined && current !== undefined) closed.push({ ...current, reason: decision.close })
    current = decision.segment
  }
  return { closed, open: current }
}

const run = (firstSequence: number, startMs: number, count: number, durationMs = 1_000, jitterMs = 0): Array<ChunkSeen> =>
  Array.from({ length: count }, (_, i) => ({
    sequence: firstSequence + i,
    startedAtMs: startMs + i * durationMs + (i % 2 === 0 ? jitterMs : -jitterMs),
    durationMs,
    discontinuity: false
  }))

describe("SegmentCutter", () => {
  it("cuts on wall-clock minutes, and segments of one run abut exactly despite arrival jitter", () => {
    const { closed, open } = feed(run(100, t0 + 20_300, 160, 1_000, 40))
    assert.deepStrictEqual(closed.map((s) => [s.startMs - t0, s.endMs - t0, s.reason]), [
      [20_340, 60_340, "boundary"],
      [60_340, 120_340, "boundary"]
    ])
    assert.strictEqual(open!.startMs, closed[1]!.endMs)
    assert.strictEqual(open!.chunks, 60)
  })

  it("a discontinuity, a missing chunk or a clock jump closes the segment early, leaving a gap", () => {
    const first = run(1, t0, 10)
    const restarted = run(11, t0 + 14_000, 5).map((c, i) => (i === 0 ? { ...c, discontinuity: true } : c))
    const skipped = run(17, t0 + 20_000, 3)
    const jumped = run(20, t0 + 30_000, 2)
    const { closed, open } = feed([...first, ...restarted, ...skipped, ...jumped])
    assert.deepStrictEqual(closed.map((s) => [s.startMs - t0, s.endMs - t0, s.reason]), [
      [0, 10_000, "discontinuity"],
      [14_000, 19_000, "missing-chunk"],
      [20_000, 23_000, "clock-jump"]
    ])
    assert.strictEqual(open!.startMs - t0, 30_000)
  })

  it("with short test segments (5 s) and 1 s chunks, each segment holds 5 chunks", () => {
    const { closed } = feed(run(1, t0 + 2_000, 23), 5_000)
    assert.deepStrictEqual(closed.map((s) => [s.startMs - t0, s.chunks]), [[2_000, 3], [5_000, 5], [10_000, 5], [15_000, 5]])
  })
})
