import { assert, describe, it } from "@effect/vitest"
import * as Timeline from "./Timeline.ts"

describe("Timeline", () => {
  it("merges abutting segments into spans and lists the gaps, clipped to the range", () => {
    const timeline = Timeline.build([
      { startMs: 0, endMs: 60_000 },
      { startMs: 60_000, endMs: 120_000 },
      { startMs: 120_300, endMs: 150_000 },
      { startMs: 155_000, endMs: 200_000 },
      { startMs: 260_000, endMs: 320_000 }
    ], 30_000, 400_000)
    assert.deepStrictEqual(timeline.recorded, [
      { startMs: 30_000, endMs: 120_000 },
      { startMs: 120_300, endMs: 150_000 },
      { startMs: 155_000, endMs: 200_000 },
      { startMs: 260_000, endMs: 320_000 }
    ])
    assert.deepStrictEqual(timeline.gaps, [
      { startMs: 120_000, endMs: 120_300 },
      { startMs: 150_000, endMs: 155_000 },
      { startMs: 200_000, endMs: 260_000 },
      { startMs: 320_000, endMs: 400_000 }
    ])
  })

  it("a range with nothing recorded is one gap", () => {
    assert.deepStrictEqual(Timeline.build([], 0, 10), { recorded: [], gaps: [{ startMs: 0, endMs: 10 }] })
  })
})
