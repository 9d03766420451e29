/**
 * What a viewer of a camera's live stream gets, node by node: every chunk
 * each node lists in its own live playlist (asked with `X-Vms-Forwarded`,
 * so a node answers only for the cameras it runs itself), with the chunk's
 * wall-clock media start (`#EXT-X-PROGRAM-DATE-TIME`: the owner stamps a
 * chunk when ffmpeg closes it, minus its duration), its duration, and
 * when the poller first saw it listed. From that, the interruption of a
 * camera that moved from one node to another:
 *
 * - `mediaGapMs`: the live media no node listed — from the end of the last
 *   chunk anyone listed before the new owner's own first chunk (the old
 *   owner's, or the old owner's tail that the new owner lists after a
 *   handover) to the start of that first chunk, in wall-clock time.
 * - `waitMs`: how long a viewer waited for the next playable chunk — from
 *   the moment the chunk before the gap was first listed anywhere to the
 *   moment the new owner's first chunk was (about 1 s between chunks without
 *   a move; the poll adds up to one `pollMs` of error).
 *
 * The new owner's own first chunk is told by its `#EXT-X-DISCONTINUITY`
 * (every ffmpeg run's first chunk carries one); the chunks of a handed-over
 * tail carry the names, times and flags the old owner gave them. Used by the
 * cluster tests and by `vms bench handover`.
 */
import { Effect, Fiber, type Scope } from "effect"

/** A node whose live playlists are watched: its id (as in the status events) and its HTTP base URL. */
export interface LiveNode {
  readonly id: string
  readonly baseUrl: string
}

export interface SeenChunk {
  readonly nodeId: string
  readonly uri: string
  /** Wall-clock start of the chunk's media (ms since the epoch). */
  readonly startsAt: number
  readonly durationMs: number
  /** Listed after `#EXT-X-DISCONTINUITY`: the first chunk of an ffmpeg run. */
  readonly discontinuity: boolean
  /** When the poller first saw it listed. */
  readonly seenAt: number
  /** Listed already at the first poll: `seenAt` says nothing of when it came. */
  readonly initial: boolean
}

export interface LiveTimeline {
  readonly chunks: (cameraId: string) => ReadonlyArray<SeenChunk>
  readonly stop: Effect.Effect<void>
}

const parsePlaylist = (body: string) => {
  const found: Array<{ uri: string; startsAt: number; durationMs: number; discontinuity: boolean }> = []
  let startsAt = NaN
  let durationMs = NaN
  let discontinuity = false
  for (const line of body.split("\n")) {
    if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) startsAt = Date.parse(line.slice(25))
    else if (line.startsWith("#EXTINF:")) durationMs = Math.round(Number.parseFloat(line.slice(8)) * 1000)
    else if (line === "#EXT-X-DISCONTINUITY") discontinuity = true
    else if (line !== "" && !line.startsWith("#")) {
      found.push({ uri: line.split("?")[0]!, startsAt, durationMs, discontinuity })
      startsAt = NaN
      durationMs = NaN
      discontinuity = false
    }
  }
  return found
}

/** Polls every camera's playlist on every node every `pollMs` until stopped (or the scope closes). */
export const watchLive = (
  nodes: ReadonlyArray<LiveNode>,
  cameraIds: ReadonlyArray<string>,
  pollMs = 50
): Effect.Effect<LiveTimeline, never, Scope.Scope> =>
  Effect.gen(function*() {
    const seen = new Map<string, Array<SeenChunk>>(cameraIds.map((id) => [id, []]))
    const known = new Set<string>()
    const pollOne = (node: LiveNode, cameraId: string, initial: boolean) =>
      Effect.promise(async () => {
        const body = await fetch(`${node.baseUrl}/live/${cameraId}/index.m3u8`, { headers: { "x-vms-forwarded": "test" } })
          .then((r) => r.status === 200 ? r.text() : "")
          .catch(() => "")
        const now = Date.now()
        for (const chunk of parsePlaylist(body)) {
          const key = `${node.id} ${cameraId} ${chunk.uri}`
          if (known.has(key)) continue
          known.add(key)
          seen.get(cameraId)!.push({ nodeId: node.id, ...chunk, seenAt: now, initial })
        }
      })
    const loop = (node: LiveNode, cameraId: string) =>
      Effect.andThen(
        pollOne(node, cameraId, true),
        Effect.forever(Effect.andThen(Effect.sleep(pollMs), pollOne(node, cameraId, false)))
      )
    const fibers = yield* Effect.forEach(
      nodes.flatMap((node) => cameraIds.map((cameraId) => [node, cameraId] as const)),
      ([node, cameraId]) => Effect.forkScoped(loop(node, cameraId))
    )
    return {
      chunks: (cameraId) => seen.get(cameraId) ?? [],
      stop: Fiber.interruptAll(fibers)
    }
  })

export interface Interruption {
  readonly cameraId: string
  readonly from: string
  readonly to: string
  readonly mediaGapMs: number
  readonly waitMs: number
  /** Chunks of the old owner's that the new owner listed before its own (the handed-over tail). */
  readonly tailChunks: number
}

/**
 * The move of `cameraId` away from `from`, signalled at `signalAt` (ms since
 * the epoch): the first chunk another node's own ffmpeg made after the signal,
 * against the chunk before it in the media every node listed. Undefined until
 * the new owner has listed its first chunk.
 */
export const interruption = (
  timeline: LiveTimeline,
  cameraId: string,
  from: string,
  signalAt: number
): Interruption | undefined => {
  const chunks = timeline.chunks(cameraId)
  const next = chunks
    .filter((c) => c.nodeId !== from && c.discontinuity && c.startsAt > signalAt)
    .reduce<SeenChunk | undefined>((a, c) => a === undefined || c.startsAt < a.startsAt ? c : a, undefined)
  if (next === undefined) return undefined
  // The chunk whose media ends last before it, wherever it was listed; its first sighting.
  const before = chunks.filter((c) => c.startsAt < next.startsAt)
  const endOf = (c: SeenChunk) => c.startsAt + c.durationMs
  const last = before.reduce<SeenChunk | undefined>((a, c) =>
    a === undefined || endOf(c) > endOf(a) || (endOf(c) === endOf(a) && c.seenAt < a.seenAt) ? c : a, undefined)
  if (last === undefined) return undefined
  return {
    cameraId,
    from,
    to: next.nodeId,
    mediaGapMs: next.startsAt - endOf(last),
    waitMs: next.seenAt - last.seenAt,
    tailChunks: before.filter((c) => c.nodeId === next.nodeId).length
  }
}

/** The usual time between two chunks of one camera on one node, as seen by the poller (median). */
export const chunkCadenceMs = (timeline: LiveTimeline, cameraId: string, nodeId: string): number | undefined => {
  const seenAt = timeline.chunks(cameraId).filter((c) => c.nodeId === nodeId && !c.initial).map((c) => c.seenAt)
    .sort((a, b) => a - b)
  const gaps = seenAt.slice(1).map((t, i) => t - seenAt[i]!).sort((a, b) => a - b)
  return gaps.length === 0 ? undefined : gaps[Math.floor(gaps.length / 2)]
}
