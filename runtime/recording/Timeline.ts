/**
 * A camera's timeline over `[fromMs, toMs)`: the recorded spans (segments
 * that abut merged into one: segments of one ffmpeg run abut exactly, so
 * any space between two is time that was not recorded) and the
 * gaps between them, before the first and after the last, clipped to the
 * range. Pure; the rows come from the index in start order.
 */

export interface Interval {
  readonly startMs: number
  readonly endMs: number
}

export interface Timeline {
  readonly recorded: ReadonlyArray<Interval>
  readonly gaps: ReadonlyArray<Interval>
}

export const gapToleranceMs = 0

export const build = (segments: ReadonlyArray<Interval>, fromMs: number, toMs: number): Timeline => {
  const recorded: Array<{ startMs: number; endMs: number }> = []
  for (const segment of segments) {
    const startMs = Math.max(fromMs, segment.startMs)
    const endMs = Math.min(toMs, segment.endMs)
    if (endMs <= startMs) continue
    const last = recorded.at(-1)
    if (last !== undefined && startMs - last.endMs <= gapToleranceMs) last.endMs = Math.max(last.endMs, endMs)
    else recorded.push({ startMs, endMs })
  }
  const gaps: Array<Interval> = []
  let cursor = fromMs
  for (const span of recorded) {
    if (span.startMs > cursor) gaps.push({ startMs: cursor, endMs: span.startMs })
    cursor = Math.max(cursor, span.endMs)
  }
  if (cursor < toMs) gaps.push({ startMs: cursor, endMs: toMs })
  return { recorded, gaps }
}
