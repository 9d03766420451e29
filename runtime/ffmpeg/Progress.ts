/**
 * ffmpeg's `-progress` output: blocks of `key=value` lines, each ended by
 * `progress=continue` (or `progress=end` when ffmpeg finishes). This module
 * folds lines into blocks; the pipeline turns consecutive blocks into rates.
 */

export interface ProgressBlock {
  /** Frames written so far in this run. */
  readonly frames: number
  /** ffmpeg's own average fps for the run (copy mode: since the start). */
  readonly fps: number
  readonly droppedFrames: number
  /** Output timestamp in microseconds; advances only while packets flow. */
  readonly outTimeUs: number
  /** Processing speed relative to real time, when ffmpeg knows it. */
  readonly speed: number | undefined
  readonly end: boolean
}

const numberOr = (value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback
  const parsed = Number.parseFloat(value)
  return Number.isFinite(parsed) ? parsed : fallback
}

/** Collects lines and returns a block when its `progress=` line arrives. */
export const makeProgressParser = () => {
  let fields = new Map<string, string>()
  return (line: string): ProgressBlock | undefined => {
    const eq = line.indexOf("=")
    if (eq <= 0) return undefined
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    if (key !== "progress") {
      fields.set(key, value)
      return undefined
    }
    const speed = fields.get("speed")
    const block: ProgressBlock = {
      frames: numberOr(fields.get("frame"), 0),
      fps: numberOr(fields.get("fps"), 0),
      droppedFrames: numberOr(fields.get("drop_frames"), 0),
      outTimeUs: numberOr(fields.get("out_time_us"), 0),
      speed: speed === undefined || speed === "N/A" ? undefined : numberOr(speed.replace(/x$/, ""), 0),
      end: value === "end"
    }
    fields = new Map()
    return block
  }
}
