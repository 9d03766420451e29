/**
 * When a camera's next keyframe will arrive, on this node's wall clock, from
 * the chunks ffmpeg has closed: the segment muxer cuts only at keyframes, so
 * every chunk's end (in stream time) is a keyframe, and chunks follow each
 * other one keyframe interval (or a few) apart.
 *
 * A chunk is reported when ffmpeg closes it, on the keyframe that starts the
 * next one; the node sees the report late by however long ffmpeg and the
 * event loop took (tens of milliseconds, hundreds on a loaded machine). The
 * stream time of that keyframe is exact, so the clock keeps the smallest
 * `seen − stream time` of recent chunks (the report that came soonest) as the
 * offset between the two clocks.
 *
 * Used to stop a camera that moves to another node just before a keyframe:
 * the new owner's ffmpeg starts playing a fraction of a second later, and its
 * first chunk starts at the keyframe the old one did not get, instead of up
 * to a whole keyframe interval after it (see `stopDelayMs`).
 */

export interface KeyframeClock {
  /** A chunk that ends at `endSeconds` (stream time), lasting `durationSeconds`, reported at `seenAtMs` (wall clock). */
  readonly observe: (endSeconds: number, durationSeconds: number, seenAtMs: number) => void
  /** The first keyframe at or after `atMs` (wall clock); undefined before two chunks were seen. */
  readonly nextKeyframeAt: (atMs: number) => number | undefined
}

/** Chunks the offset and the interval are taken from. */
const window = 8

export const make = (): KeyframeClock => {
  const offsets: Array<number> = []
  const intervals: Array<number> = []
  let lastEndSeconds: number | undefined
  return {
    observe: (endSeconds, durationSeconds, seenAtMs) => {
      // ffmpeg starts a run's stream time anew; a time that goes back is another run's.
      if (lastEndSeconds !== undefined && endSeconds <= lastEndSeconds) {
        offsets.length = 0
        intervals.length = 0
      }
      lastEndSeconds = endSeconds
      offsets.push(seenAtMs - endSeconds * 1000)
      if (offsets.length > window) offsets.shift()
      if (durationSeconds > 0) {
        intervals.push(durationSeconds * 1000)
        if (intervals.length > window) intervals.shift()
      }
    },
    nextKeyframeAt: (atMs) => {
      if (lastEndSeconds === undefined || offsets.length < 2 || intervals.length === 0) return undefined
      const lastKeyframe = Math.min(...offsets) + lastEndSeconds * 1000
      const interval = [...intervals].sort((a, b) => a - b)[Math.floor(intervals.length / 2)]!
      if (atMs <= lastKeyframe) return lastKeyframe
      return lastKeyframe + Math.ceil((atMs - lastKeyframe) / interval) * interval
    }
  }
}

/**
 * How long to keep ffmpeg running before stopping it, so that it stops
 * `leadMs` before a keyframe: the first keyframe at least `leadMs` from now,
 * minus `leadMs`. Zero when the clock cannot tell, or when that is more than
 * `maxWaitMs` away (a camera with a long keyframe interval stops at once).
 *
 * With the new owner playing `L` after the stop, its first chunk starts
 * `leadMs` after the old owner's last frame when `L ≤ leadMs`, and one
 * keyframe interval later when `L` is longer (up to an interval longer);
 * stopped at a random moment instead, it starts anywhere from `L` to `L` plus
 * an interval after it.
 */
export const stopDelayMs = (clock: KeyframeClock, nowMs: number, leadMs: number, maxWaitMs: number): number => {
  const keyframe = clock.nextKeyframeAt(nowMs + leadMs)
  if (keyframe === undefined) return 0
  const delay = keyframe - leadMs - nowMs
  return delay > maxWaitMs ? 0 : Math.max(0, delay)
}
