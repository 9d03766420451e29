import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { groupAccessUnits, splitAnnexB } from "./H264.ts"
import { depacketize, H264PayloadType, packetizeAccessUnit, RtpFrame, RtpHeaderSize } from "./RtpH264.ts"
import { loadSharedClip } from "./testing/SharedClip.ts"

const nal = (type: number, length: number, seed: number) => {
  const data = new Uint8Array(length)
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed) & 0xff
  data[0] = 0x60 | type
  return data
}

describe("RtpH264.packetizeAccessUnit", () => {
  it("sends small NAL units whole and fragments large ones as FU-A", () => {
    const sps = nal(7, 20, 1)
    const pps = nal(8, 6, 2)
    const idr = nal(5, 5000, 3)
    const payloads = packetizeAccessUnit({ nalUnits: [sps, pps, idr], keyframe: true }, 1400)
    assert.deepStrictEqual([...payloads[0]!.payload], [...sps])
    assert.deepStrictEqual([...payloads[1]!.payload], [...pps])
    const fragments = payloads.slice(2)
    assert.strictEqual(fragments.length, Math.ceil((5000 - 1) / (1400 - 12 - 2)))
    for (const [i, { payload }] of fragments.entries()) {
      assert.isAtMost(payload.length + RtpHeaderSize, 1400)
      assert.strictEqual(payload[0]! & 0x1f, 28, "FU-A indicator")
      assert.strictEqual(payload[0]! & 0xe0, idr[0]! & 0xe0, "F and NRI copied")
      assert.strictEqual(payload[1]! & 0x1f, 5, "original type in FU header")
      assert.strictEqual((payload[1]! & 0x80) !== 0, i === 0, "start bit")
      assert.strictEqual((payload[1]! & 0x40) !== 0, i === fragments.length - 1, "end bit")
    }
    assert.deepStrictEqual(payloads.map((p) => p.marker), payloads.map((_, i) => i === payloads.length - 1))
    const reassembled = depacketize(payloads.map((p) => p.payload))
    assert.deepStrictEqual(reassembled.map((n) => [...n]), [[...sps], [...pps], [...idr]])
  })

  it("depacketizes STAP-A and drops FU-A fragments without a start", () => {
    const stap = Uint8Array.of(24, 0, 2, 0x67, 1, 0, 1, 0x68)
    const orphan = Uint8Array.of(0x7c, 0x45, 9, 9)
    assert.deepStrictEqual(depacketize([stap, orphan]).map((n) => [...n]), [[0x67, 1], [0x68]])
  })
})

describe("RtpH264.RtpFrame", () => {
  it("stamps channel, sequence numbers (wrapping), timestamp and SSRC into a copy of the template", () => {
    const frame = new RtpFrame({ nalUnits: [nal(7, 10, 1), nal(5, 3000, 2)], keyframe: true })
    const out = frame.stamp(4, 0xfffe, 0xdeadbeef, 0x01020304)
    assert.notStrictEqual(out, frame.template)
    const seqs: Array<number> = []
    let offset = 0
    for (let i = 0; i < frame.packetCount; i++) {
      assert.strictEqual(out[offset], 0x24)
      assert.strictEqual(out[offset + 1], 4)
      const length = out.readUInt16BE(offset + 2)
      const header = offset + 4
      assert.strictEqual(header, frame.headerOffsets[i])
      assert.strictEqual(length, frame.packetLengths[i])
      assert.strictEqual(out[header], 0x80)
      assert.strictEqual(out[header + 1]! & 0x7f, H264PayloadType)
      assert.strictEqual((out[header + 1]! & 0x80) !== 0, i === frame.packetCount - 1)
      seqs.push(out.readUInt16BE(header + 2))
      assert.strictEqual(out.readUInt32BE(header + 4), 0xdeadbeef)
      assert.strictEqual(out.readUInt32BE(header + 8), 0x01020304)
      offset = header + length
    }
    assert.strictEqual(offset, out.length)
    assert.deepStrictEqual(seqs, [0xfffe, 0xffff, 0, 1].slice(0, frame.packetCount))
    assert.strictEqual(frame.template.readUInt32BE(frame.headerOffsets[0]! + 8), 0, "template untouched")
  })

  it.effect("round-trips every frame of the test clip", () =>
    Effect.gen(function*() {
      const clip = yield* loadSharedClip
      const units = groupAccessUnits(splitAnnexB(readFileSync(clip.path)))
      assert.strictEqual(units.length, clip.frames.length)
      clip.frames.forEach((frame, index) => {
        const payloads = Array.from(frame.headerOffsets, (header, i) =>
          frame.template.subarray(header + RtpHeaderSize, header + frame.packetLengths[i]!))
        const nals = depacketize(payloads)
        assert.deepStrictEqual(nals.map((n) => Buffer.from(n)), units[index]!.nalUnits.map((n) => Buffer.from(n)))
        for (const length of frame.packetLengths) assert.isAtMost(length, 1400)
      })
    }))
})
