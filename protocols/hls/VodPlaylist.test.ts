import { assert, describe, it } from "@effect/vitest"
import * as VodPlaylist from "./VodPlaylist.ts"

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0)

describe("VodPlaylist", () => {
  it("dates every segment, marks gaps with a discontinuity and starts at the requested time", () => {
    const text = VodPlaylist.render([
      { uri: "a.ts", startMs: t0, durationMs: 60_000 },
      { uri: "b.ts", startMs: t0 + 60_000, durationMs: 60_480 },
      { uri: "c.ts", startMs: t0 + 125_000, durationMs: 55_000 }
    ], { startAtMs: t0 + 12_500 })
    assert.strictEqual(text, [
      "#EXTM3U",
      "#EXT-X-VERSION:3",
      "#EXT-X-PLAYLIST-TYPE:VOD",
      "#EXT-X-TARGETDURATION:61",
      "#EXT-X-MEDIA-SEQUENCE:0",
      "#EXT-X-INDEPENDENT-SEGMENTS",
      "#EXT-X-START:TIME-OFFSET=12.500,PRECISE=YES",
      "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:00:00.000Z",
      "#EXTINF:60.000,",
      "a.ts",
      "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:01:00.000Z",
      "#EXTINF:60.480,",
      "b.ts",
      "#EXT-X-DISCONTINUITY",
      "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:02:05.000Z",
      "#EXTINF:55.000,",
      "c.ts",
      "#EXT-X-ENDLIST",
      ""
    ].join("\n"))
  })

  it("has no EXT-X-START when playback begins at the first segment", () => {
    const text = VodPlaylist.render([{ uri: "a.ts", startMs: t0, durationMs: 4_000 }], { startAtMs: t0 - 5_000 })
    assert.notInclude(text, "EXT-X-START")
    assert.include(text, "#EXT-X-TARGETDURATION:4\n")
  })
})
