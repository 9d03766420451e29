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

  it("a discontinuity, a missing chunk or a stalled source closes the segment early, leaving a gap", () => {
    const first = run(1, t0, 10)
    const restarted = run(11, t0 + 14_000, 5).map((c, i) => (i === 0 ? { ...c, discontinuity: true } : c))
    const skipped = run(17, t0 + 20_000, 3)
    const stalled = run(20, t0 + 30_000, 2)
    const { closed, open } = feed([...first, ...restarted, ...skipped, ...stalled])
    assert.deepStrictEqual(closed.map((s) => [s.startMs - t0, s.endMs - t0, s.reason]), [
      [0, 10_000, "discontinuity"],
      [14_000, 19_000, "missing-chunk"],
      [20_000, 23_000, "stall"]
    ])
    assert.strictEqual(open!.startMs - t0, 30_000)
  })

  it("chunks arriving in a burst keep media time; media time far ahead of the clock is cut", () => {
    // ffmpeg's first chunks after probing arrive together, 1.8 s late at first.
    const burst = [0, 1, 2, 3].map((i) => ({ sequence: i, startedAtMs: t0 + 1_800 + i * 300, durationMs: 1_000, discontinuity: false }))
    const steady = run(4, t0 + 4_000, 4)
    const { closed, open } = feed([...burst, ...steady])
    assert.deepStrictEqual(closed, [])
    assert.deepStrictEqual([open!.startMs - t0, open!.endMs - t0], [1_800, 9_800])
    const fast = Array.from({ length: 20 }, (_, i) => ({ sequence: i, startedAtMs: t0 + i * 400, durationMs: 1_000, discontinuity: false }))
    assert.deepInclude(feed(fast, 3_600_000).closed[0]!, { reason: "clock-drift" })
  })

  it("a chunk that follows the last closed segment (recording off and on between two chunks) continues it", () => {
    const previous = { endMs: t0 + 10_000, lastSequence: 9 }
    assert.strictEqual(onChunk(undefined, { sequence: 10, startedAtMs: t0 + 9_990, durationMs: 1_000, discontinuity: false }, minute, previous).segment.startMs, t0 + 10_000)
    assert.strictEqual(onChunk(undefined, { sequence: 12, startedAtMs: t0 + 12_020, durationMs: 1_000, discontinuity: false }, minute, previous).segment.startMs, t0 + 12_020)
    // Never before the previous end, even when the clock says so.
    assert.strictEqual(onChunk(undefined, { sequence: 1, startedAtMs: t0 + 9_996, durationMs: 1_000, discontinuity: true }, minute, previous).segment.startMs, t0 + 10_000)
  })

  it("a segment cut at a chunk that straddles the boundary runs to the next boundary", () => {
    const { closed } = feed(run(1, t0 + 33_577, 12), 4_000)
    assert.deepStrictEqual(closed.map((s) => [s.startMs - t0, s.endMs - s.startMs]), [[33_577, 2_000], [35_577, 4_000], [39_577, 4_000]])
  })

  it("with short test segments (5 s) and 1 s chunks, each segment holds 5 chunks", () => {
    const { closed } = feed(run(1, t0 + 2_000, 23), 5_000)
    assert.deepStrictEqual(closed.map((s) => [s.startMs - t0, s.chunks]), [[2_000, 3], [5_000, 5], [10_000, 5], [15_000, 5]])
  })
})
