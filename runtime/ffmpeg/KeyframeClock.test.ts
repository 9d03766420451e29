/**
 * The keyframe clock: the next keyframe from chunk reports that come late by
 * varying amounts, and the delay that stops ffmpeg just before it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as KeyframeClock from "./KeyframeClock.ts"

/** A stream whose keyframe `n` (stream time n s) arrives at wall time `base + n * 1000` ms. */
const base = 1_000_000

describe("KeyframeClock", () => {
  it("takes the soonest report as the offset, whatever the other reports' delays", () => {
    const clock = KeyframeClock.make()
    assert.isUndefined(clock.nextKeyframeAt(base))
    // Chunks of 1 s reported 40, 5, 300 and 120 ms after their closing keyframe arrived.
    const delays = [40, 5, 300, 120]
    delays.forEach((delay, i) => clock.observe(i + 1, 1, base + (i + 1) * 1_000 + delay))
    // The last chunk ended at keyframe 4; the next ones are 5, 6, ... (5 ms late: the soonest report).
    assert.strictEqual(clock.nextKeyframeAt(base + 4_300), base + 5_005)
    assert.strictEqual(clock.nextKeyframeAt(base + 5_005), base + 5_005)
    assert.strictEqual(clock.nextKeyframeAt(base + 7_500), base + 8_005)
  })

  it("takes the usual chunk length as the keyframe interval; a new run's times start over", () => {
    const clock = KeyframeClock.make()
    // 2 s chunks, one cut short (a stop), one long (a keyframe that came late).
    for (const [end, duration] of [[2, 2], [4, 2], [6, 2], [7, 1], [10, 3], [12, 2]] as const) {
      clock.observe(end, duration, base + end * 1_000)
    }
    assert.strictEqual(clock.nextKeyframeAt(base + 12_100), base + 14_000)
    // ffmpeg started again: its stream time went back; one report is not enough to tell.
    clock.observe(1, 1, base + 20_000)
    assert.isUndefined(clock.nextKeyframeAt(base + 20_100))
  })

  it("stops ffmpeg `lead` before the first keyframe it can still reach, or at once when that is too far", () => {
    const clock = KeyframeClock.make()
    for (let i = 1; i <= 4; i++) clock.observe(i, 1, base + i * 1_000)
    // Now 4.2 s: keyframe 5 is 0.8 s away; a 0.7 s lead stops in 0.1 s.
    assert.strictEqual(KeyframeClock.stopDelayMs(clock, base + 4_200, 700, 1_500), 100)
    // Now 4.5 s: keyframe 5 is only 0.5 s away, too close for the lead; the next one (6) it is.
    assert.strictEqual(KeyframeClock.stopDelayMs(clock, base + 4_500, 700, 1_500), 800)
    // Not worth the wait beyond the cap; a clock that cannot tell stops at once too.
    assert.strictEqual(KeyframeClock.stopDelayMs(clock, base + 4_500, 700, 500), 0)
    assert.strictEqual(KeyframeClock.stopDelayMs(KeyframeClock.make(), base, 700, 1_500), 0)
  })
})
