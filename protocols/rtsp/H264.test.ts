import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { groupAccessUnits, NalType, nalType, profileLevelId, splitAnnexB, spsPictureSize } from "./H264.ts"
import { loadSharedClip } from "./testing/SharedClip.ts"

const bytes = (...values: Array<number>) => Uint8Array.from(values)

describe("H264.splitAnnexB", () => {
  it("splits on 3- and 4-byte start codes and drops trailing zeros", () => {
    const stream = bytes(
      0, 0, 0, 1, 0x67, 1, 2, 3, 0, // SPS with a trailing zero byte
      0, 0, 1, 0x68, 4, 5,
      0, 0, 0, 1, 0x65, 0x88, 0, 0, 3, 1, 7
    )
    const nals = splitAnnexB(stream)
    assert.deepStrictEqual(nals.map((nal) => [...nal]), [
      [0x67, 1, 2, 3],
      [0x68, 4, 5],
      [0x65, 0x88, 0, 0, 3, 1, 7]
    ])
  })

  it("ignores bytes before the first start code and empty NAL units", () => {
    const nals = splitAnnexB(bytes(9, 9, 0, 0, 1, 0, 0, 1, 0x41, 0x9a, 0, 0, 0))
    assert.deepStrictEqual(nals.map((nal) => [...nal]), [[0x41, 0x9a]])
  })
})

describe("H264.groupAccessUnits", () => {
  it("starts a new access unit at parameter sets, SEI, AUD and first slices", () => {
    const sps = bytes(0x67, 0x4d)
    const pps = bytes(0x68, 0xee)
    const sei = bytes(0x06, 0x05)
    const aud = bytes(0x09, 0xf0)
    const idr = bytes(0x65, 0x88) // first_mb_in_slice == 0
    const idrSecondSlice = bytes(0x65, 0x40) // first_mb_in_slice != 0
    const p1 = bytes(0x41, 0x9a)
    const p2 = bytes(0x41, 0x9b)
    const units = groupAccessUnits([aud, sps, pps, sei, idr, idrSecondSlice, p1, aud, p2, sps, pps, idr])
    assert.deepStrictEqual(units.map((unit) => unit.nalUnits.map(nalType)), [
      [7, 8, 6, 5, 5],
      [1],
      [1],
      [7, 8, 5]
    ])
    assert.deepStrictEqual(units.map((unit) => unit.keyframe), [true, false, false, true])
  })
})

describe("H264 test clip", () => {
  it.effect("is 720p15 with a 1 s GOP, starts with SPS/PPS/IDR and loops on a keyframe", () =>
    Effect.gen(function*() {
      const clip = yield* loadSharedClip
      assert.strictEqual(clip.width, 1280)
      assert.strictEqual(clip.height, 720)
      assert.strictEqual(clip.fps, 15)
      assert.strictEqual(clip.gopFrames, 15)
      assert.strictEqual(clip.frames.length % clip.gopFrames, 0)
      assert.strictEqual(clip.profileLevelId, profileLevelId(clip.sps))
      assert.strictEqual(clip.profileLevelId.slice(0, 2), "4D") // Main profile
      assert.deepStrictEqual(spsPictureSize(clip.sps), { width: 1280, height: 720 })
      clip.frames.forEach((frame, index) => assert.strictEqual(frame.keyframe, index % clip.gopFrames === 0))
      assert.strictEqual(nalType(clip.sps), NalType.Sps)
      assert.strictEqual(nalType(clip.pps), NalType.Pps)
      const bitsPerSecond = (clip.frames.reduce((sum, frame) => sum + frame.payloadOctets, 0) * 8 * clip.fps) /
        clip.frames.length
      assert.isTrue(bitsPerSecond > 700_000 && bitsPerSecond < 1_300_000, `bitrate ${bitsPerSecond}`)
    }))
})
