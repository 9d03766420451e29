/**
 * A VOD HLS media playlist over recorded segments: every segment carries
 * its `#EXT-X-PROGRAM-DATE-TIME`, a segment that does not start where the
 * previous one ended (a gap: ffmpeg restarted, the camera dropped,
 * recording was off) gets `#EXT-X-DISCONTINUITY`, and `#EXT-X-START` puts
 * the player at the requested time inside the first segment. Pure text
 * building; the caller chooses the URIs.
 */

export interface VodSegment {
  readonly uri: string
  readonly startMs: number
  readonly durationMs: number
}

export interface VodPlaylistOptions {
  /** Where playback should begin; `EXT-X-START` when it is inside the first segment. */
  readonly startAtMs?: number | undefined
}

const seconds = (ms: number) => (ms / 1000).toFixed(3)

/** Segments must be in start order; an empty list has no playlist. */
export const render = (segments: ReadonlyArray<VodSegment>, options: VodPlaylistOptions = {}): string => {
  let target = 1
  for (const segment of segments) target = Math.max(target, Math.ceil(segment.durationMs / 1000))
  const lines = [
    "#EXTM3U",
    "#EXT-X-VERSION:3",
    "#EXT-X-PLAYLIST-TYPE:VOD",
    `#EXT-X-TARGETDURATION:${target}`,
    "#EXT-X-MEDIA-SEQUENCE:0",
    "#EXT-X-INDEPENDENT-SEGMENTS"
  ]
  const first = segments[0]
  if (first !== undefined && options.startAtMs !== undefined && options.startAtMs > first.startMs) {
    lines.push(`#EXT-X-START:TIME-OFFSET=${seconds(options.startAtMs - first.startMs)},PRECISE=YES`)
  }
  let previousEnd: number | undefined
  for (const segment of segments) {
    if (previousEnd !== undefined && segment.startMs !== previousEnd) lines.push("#EXT-X-DISCONTINUITY")
    lines.push(
      `#EXT-X-PROGRAM-DATE-TIME:${new Date(segment.startMs).toISOString()}`,
      `#EXTINF:${seconds(segment.durationMs)},`,
      segment.uri
    )
    previousEnd = segment.startMs + segment.durationMs
  }
  lines.push("#EXT-X-ENDLIST", "")
  return lines.join("\n")
}
