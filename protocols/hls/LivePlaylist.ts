/**
 * A live HLS media playlist (RFC 8216) over a sliding window of segments.
 * Pure: the caller appends finished segments and renders the text. Sequence
 * numbers never go back, a segment that starts a new ffmpeg run carries
 * `#EXT-X-DISCONTINUITY`, and `#EXT-X-DISCONTINUITY-SEQUENCE` counts the
 * discontinuities that slid out of the window, so players keep going across
 * restarts.
 */

export interface LiveSegment {
  readonly sequence: number
  /** File name, relative to the playlist. */
  readonly uri: string
  readonly durationSeconds: number
  /** First segment of a new run (timestamps restart). */
  readonly discontinuity: boolean
  /** Wall-clock time of the segment's first frame. */
  readonly programDateTime: Date
  readonly bytes: number
}

export interface LivePlaylist {
  readonly segments: ReadonlyArray<LiveSegment>
  readonly windowSize: number
  /** Discontinuities of segments that left the window. */
  readonly discontinuitySequence: number
  /** Never decreases (RFC 8216 §6.2.1: the target duration must not change). */
  readonly targetDuration: number
}

export const empty = (windowSize: number, minTargetDuration = 1): LivePlaylist => ({
  segments: [],
  windowSize,
  discontinuitySequence: 0,
  targetDuration: minTargetDuration
})

/** Appends a finished segment; returns the new playlist and the segments that left the window. */
export const append = (
  playlist: LivePlaylist,
  segment: LiveSegment
): { readonly playlist: LivePlaylist; readonly evicted: ReadonlyArray<LiveSegment> } => {
  const all = [...playlist.segments, segment]
  const evicted = all.slice(0, Math.max(0, all.length - playlist.windowSize))
  return {
    playlist: {
      ...playlist,
      segments: all.slice(evicted.length),
      discontinuitySequence: playlist.discontinuitySequence + evicted.filter((s) => s.discontinuity).length,
      targetDuration: Math.max(playlist.targetDuration, Math.ceil(segment.durationSeconds))
    },
    evicted
  }
}

export const render = (playlist: LivePlaylist): string => {
  const first = playlist.segments[0]
  const lines = [
    "#EXTM3U",
    "#EXT-X-VERSION:3",
    `#EXT-X-TARGETDURATION:${playlist.targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${first?.sequence ?? 0}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${playlist.discontinuitySequence}`
  ]
  for (const segment of playlist.segments) {
    if (segment.discontinuity) lines.push("#EXT-X-DISCONTINUITY")
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${segment.programDateTime.toISOString()}`)
    lines.push(`#EXTINF:${segment.durationSeconds.toFixed(3)},`)
    lines.push(segment.uri)
  }
  return lines.join("\n") + "\n"
}
