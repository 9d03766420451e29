import { assert, describe, it } from "@effect/vitest"
import * as LivePlaylist from "./LivePlaylist.ts"

const segment = (sequence: number, discontinuity = false, durationSeconds = 1): LivePlaylist.LiveSegment => ({
  sequence,
  uri: `seg_${sequence}.ts`,
  durationSeconds,
  discontinuity,
  programDateTime: new Date(Date.UTC(2026, 10, 21, 12, 0, sequence)),
  bytes: 1000
})

const build = (segments: ReadonlyArray<LivePlaylist.LiveSegment>, windowSize = 3) =>
  segments.reduce((playlist, s) => LivePlaylist.append(playlist, s).playlist, LivePlaylist.empty(windowSize))

describe("live playlist", () => {
  it("lists the last segments with their media sequence and durations", () => {
    const text = LivePlaylist.render(build([segment(10), segment(11), segment(12, false, 1.933), segment(13)]))
    assert.strictEqual(text, [
      "#EXTM3U",
      "#EXT-X-VERSION:3",
      "#EXT-X-TARGETDURATION:2",
      "#EXT-X-MEDIA-SEQUENCE:11",
      "#EXT-X-DISCONTINUITY-SEQUENCE:0",
      "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T12:00:11.000Z",
      "#EXTINF:1.000,",
      "seg_11.ts",
      "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T12:00:12.000Z",
      "#EXTINF:1.933,",
      "seg_12.ts",
      "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T12:00:13.000Z",
      "#EXTINF:1.000,",
      "seg_13.ts",
      ""
    ].join("\n"))
  })

  it("marks restarts with a discontinuity and counts those that slid out", () => {
    const playlist = build([segment(1), segment(2, true), segment(3), segment(4, true), segment(5)])
    const text = LivePlaylist.render(playlist)
    assert.include(text, "#EXT-X-DISCONTINUITY-SEQUENCE:1\n")
    assert.strictEqual(text.split("#EXT-X-DISCONTINUITY\n").length - 1, 1)
    assert.match(text, /#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXTINF:1.000,\nseg_4.ts/)
  })

  it("never lowers the target duration and returns evicted segments", () => {
    let playlist = LivePlaylist.empty(2)
    playlist = LivePlaylist.append(playlist, segment(1, false, 3.2)).playlist
    playlist = LivePlaylist.append(playlist, segment(2)).playlist
    const { evicted, playlist: next } = LivePlaylist.append(playlist, segment(3))
    assert.deepStrictEqual(evicted.map((s) => s.sequence), [1])
    assert.strictEqual(next.targetDuration, 4)
  })
})
