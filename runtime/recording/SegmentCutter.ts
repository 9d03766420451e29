/**
 * Where a camera's recording is cut, as a pure function of the live chunks
 * it sees (each ~1 s of MPEG-TS starting on a keyframe). A segment is cut
 * at the first chunk whose middle passes the next wall-clock boundary (a
 * multiple of the segment length since the epoch), so segments line up with
 * the clock within half a chunk. A discontinuity (ffmpeg restarted), a
 * missing chunk, or a chunk that arrives more than `maxLateMs` after where
 * the previous one ended (the source stalled) closes the segment early: the
 * time between them is a gap in the index.
 *
 * Within a run, chunk start times follow from the previous chunk's end
 * (media time), so segments of one run abut exactly, also when recording
 * was switched off and on between two chunks; the clock is read again only
 * after a gap. Chunks that arrive early (ffmpeg's burst after it probed the
 * stream) keep media time, unless media time runs `maxLeadMs` ahead of the
 * clock (a camera whose clock runs fast): then the segment is cut and the
 * next one starts on the clock again.
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

export type CutReason = "boundary" | "discontinuity" | "missing-chunk" | "stall" | "clock-drift"

export interface Decision {
  /** Close the open segment (at its `endMs`) before appending, and why. */
  readonly close: CutReason | undefined
  /** The segment the chunk goes to, after the chunk is appended. */
  readonly segment: OpenSegment
  /** The chunk opens `segment`. */
  readonly opens: boolean
}

export const maxLateMs = 1_500
export const maxLeadMs = 10_000

export const nextBoundary = (startMs: number, segmentMs: number) => (Math.floor(startMs / segmentMs) + 1) * segmentMs

/** The boundary that ends a segment is the next one after the middle of its first chunk. */
const open = (chunk: ChunkSeen, startMs: number, segmentMs: number): OpenSegment => ({
  startMs,
  endMs: startMs + chunk.durationMs,
  boundaryMs: nextBoundary(startMs + chunk.durationMs / 2, segmentMs),
  lastSequence: chunk.sequence,
  chunks: 1
})

/** Why `chunk` cannot continue media time after `previous`, if it cannot. */
const breakBetween = (previous: Pick<OpenSegment, "endMs" | "lastSequence">, chunk: ChunkSeen): CutReason | undefined =>
  chunk.discontinuity
    ? "discontinuity"
    : chunk.sequence !== previous.lastSequence + 1
    ? "missing-chunk"
    : chunk.startedAtMs - previous.endMs > maxLateMs
    ? "stall"
    : previous.endMs - chunk.startedAtMs > maxLeadMs
    ? "clock-drift"
    : undefined

/**
 * `previous` is the last segment closed on the same stream while none is
 * open (recording was switched off): a chunk that follows it continues its
 * media time.
 */
export const onChunk = (
  current: OpenSegment | undefined,
  chunk: ChunkSeen,
  segmentMs: number,
  previous?: Pick<OpenSegment, "endMs" | "lastSequence">
): Decision => {
  // After a break a segment starts on the clock, but never before the previous one ended.
  if (current === undefined) {
    const startMs = previous === undefined
      ? chunk.startedAtMs
      : breakBetween(previous, chunk) === undefined
      ? previous.endMs
      : Math.max(chunk.startedAtMs, previous.endMs)
    return { close: undefined, opens: true, segment: open(chunk, startMs, segmentMs) }
  }
  const reason = breakBetween(current, chunk)
  if (reason !== undefined) {
    return { close: reason, opens: true, segment: open(chunk, Math.max(chunk.startedAtMs, current.endMs), segmentMs) }
  }
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
