/**
 * Where a camera's recording is cut, as a pure function of the live chunks
 * it sees (each ~1 s of MPEG-TS starting on a keyframe). A segment is cut
 * at the first chunk whose middle passes the next wall-clock boundary (a
 * multiple of the segment length since the epoch), so segments line up with
 * the clock within half a chunk. A discontinuity (ffmpeg restarted), a
 * missing chunk, or a chunk that starts more than `maxJumpMs` away from
 * where the previous one ended closes the segment early: the time between
 * them is a gap in the index.
 *
 * Within a run, chunk start times follow from the previous chunk's end
 * (media time), so segments of one run abut exactly; the clock is read
 * again only after a cut for a gap.
 */

export interface ChunkSeen {
  readonly sequence: number
  /** When the chunk started, by the wall clock at its arrival. */
  readonly startedAtMs: number
  readonly durationMs: number
  /** The chunk follows an ffmpeg restart. */
  readonly discontinuity: boolean
}

export interface OpenSegment {
  readonly startMs: number
  /** End of the last chunk appended. */
  readonly endMs: number
  readonly boundaryMs: number
  readonly lastSequence: number
  readonly chunks: number
}

export type CutReason = "boundary" | "discontinuity" | "missing-chunk" | "clock-jump"

export interface Decision {
  /** Close the open segment (at its `endMs`) before appending, and why. */
  readonly close: CutReason | undefined
  /** The segment the chunk goes to, after the chunk is appended. */
  readonly segment: OpenSegment
  /** The chunk opens `segment`. */
  readonly opens: boolean
}

export const maxJumpMs = 1_500

export const nextBoundary = (startMs: number, segmentMs: number) => (Math.floor(startMs / segmentMs) + 1) * segmentMs

const open = (chunk: ChunkSeen, startMs: number, segmentMs: number): OpenSegment => ({
  startMs,
  endMs: startMs + chunk.durationMs,
  boundaryMs: nextBoundary(startMs, segmentMs),
  lastSequence: chunk.sequence,
  chunks: 1
})

export const onChunk = (current: OpenSegment | undefined, chunk: ChunkSeen, segmentMs: number): Decision => {
  if (current === undefined) return { close: undefined, opens: true, segment: open(chunk, chunk.startedAtMs, segmentMs) }
  const reason: CutReason | undefined = chunk.discontinuity
    ? "discontinuity"
    : chunk.sequence !== current.lastSequence + 1
    ? "missing-chunk"
    : Math.abs(chunk.startedAtMs - current.endMs) > maxJumpMs
    ? "clock-jump"
    : undefined
  if (reason !== undefined) return { close: reason, opens: true, segment: open(chunk, chunk.startedAtMs, segmentMs) }
  const startMs = current.endMs
  if (startMs + chunk.durationMs / 2 >= current.boundaryMs) {
    return { close: "boundary", opens: true, segment: open(chunk, startMs, segmentMs) }
  }
  return {
    close: undefined,
    opens: false,
    segment: { ...current, endMs: startMs + chunk.durationMs, lastSequence: chunk.sequence, chunks: current.chunks + 1 }
  }
}
