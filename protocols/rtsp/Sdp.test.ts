import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseSpropParameterSets, h264SessionDescription } from "./Sdp.ts"
import { loadSharedClip } from "./testing/SharedClip.ts"

describe("Sdp.h264SessionDescription", () => {
  it.effect("describes one H.264 track whose sprop-parameter-sets decode to the clip's SPS and PPS", () =>
    Effect.gen(function*() {
      const clip = yield* loadSharedClip
      const sdp = h264SessionDescription({
        sessionName: "cam7",
        sessionId: "42",
        serverAddress: "127.0.0.1",
        trackControl: "trackID=0",
        sps: clip.sps,
        pps: clip.pps,
        profileLevelId: clip.profileLevelId,
        fps: 15,
        width: 1280,
        height: 720
      })
      const lines = sdp.split("\r\n")
      assert.strictEqual(lines[0], "v=0")
      assert.isTrue(sdp.endsWith("\r\n"))
      assert.include(lines, "s=cam7")
      assert.include(lines, "m=video 0 RTP/AVP 96")
      assert.include(lines, "a=rtpmap:96 H264/90000")
      assert.include(lines, "a=control:trackID=0")
      assert.include(lines, "a=framerate:15")
      const fmtp = lines.find((line) => line.startsWith("a=fmtp:96 "))!
      assert.include(fmtp, "packetization-mode=1")
      assert.include(fmtp, `profile-level-id=${clip.profileLevelId}`)
      const [sps, pps] = parseSpropParameterSets(sdp)
      assert.deepStrictEqual(Buffer.from(sps!), Buffer.from(clip.sps))
      assert.deepStrictEqual(Buffer.from(pps!), Buffer.from(clip.pps))
    }))
})
