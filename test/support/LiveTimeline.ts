/**
 * What a viewer of a camera's live stream gets, node by node: every chunk
 * each node lists in its own live playlist (asked with `X-Vms-Forwarded`,
 * so a node answers only for the cameras it runs itself), with the chunk's
 * wall-clock media start (`#EXT-X-PROGRAM-DATE-TIME`: the owner stamps a
 * chunk when ffmpeg closes it, minus its duration), its duration, and
 * when the poller first saw it listed. From that, the interruption of a
 * camera that moved from one node to another:
 *
 * - `mediaGapMs`: the live media nobody got — from the end of the last chunk
 *   the old owner delivered to the start of the first chunk the new owner
 *   delivered, both in wall-clock time.
 * - `waitMs`: how long a viewer waited for the next playable chunk — from
 *   the moment the old owner's last chunk was listed to the moment the new
 *   owner's first chunk was (about 1 s between chunks without a move; the
 *   poll adds up to one `pollMs` of error).
 */
import { Effect, Fiber, type Scope } from "effect"
import type { ClusterNode } from "./Cluster.ts"

export interface SeenChunk {
  readonly nodeId: string
  readonly uri: string
  /** Wall-clock start of the chunk's media (ms since the epoch). */
  readonly startsAt: number
  readonly durationMs: number
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
  const found: Array<{ uri: string; startsAt: number; durationMs: number }> = []
  let startsAt = NaN
  let durationMs = NaN
  for (const line of body.split("\n")) {
    if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) startsAt = Date.parse(line.slice(25))
    else if (line.startsWith("#EXTINF:")) durationMs = Math.round(Number.parseFloat(line.slice(8)) * 1000)
    else if (line !== "" && !line.startsWith("#")) {
      found.push({ uri: line.split("?")[0]!, startsAt, durationMs })
      startsAt = NaN
      durationMs = NaN
    }
  }
  return found
}

/** Polls every camera's playlist on every node every `pollMs` until stopped (or the scope closes). */
export const watchLive = (
  nodes: ReadonlyArray<ClusterNode>,
  cameraIds: ReadonlyArray<string>,
  pollMs = 50
): Effect.Effect<LiveTimeline, never, Scope.Scope> =>
  Effect.gen(function*() {
    const seen = new Map<string, Array<SeenChunk>>(cameraIds.map((id) => [id, []]))
    const known = new Set<string>()
    const pollOne = (node: ClusterNode, cameraId: string, initial: boolean) =>
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
    const loop = (node: ClusterNode, cameraId: string) =>
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
}

/**
 * The move of `cameraId` away from `from`: its last chunk there against the
 * first chunk any other node listed after it. Undefined when either is missing.
 */
export const interruption = (timeline: LiveTimeline, cameraId: string, from: string): Interruption | undefined => {
  const chunks = timeline.chunks(cameraId)
  const old = chunks.filter((c) => c.nodeId === from)
  const last = old.reduce<SeenChunk | undefined>((a, c) => a === undefined || c.startsAt > a.startsAt ? c : a, undefined)
  if (last === undefined) return undefined
  const next = chunks
    .filter((c) => c.nodeId !== from && c.startsAt > last.startsAt)
    .reduce<SeenChunk | undefined>((a, c) => a === undefined || c.startsAt < a.startsAt ? c : a, undefined)
  if (next === undefined) return undefined
  return {
    cameraId,
    from,
    to: next.nodeId,
    mediaGapMs: next.startsAt - (last.startsAt + last.durationMs),
    waitMs: next.seenAt - last.seenAt
  }
}

/** The usual time between two chunks of one camera on one node, as seen by the poller (median). */
export const chunkCadenceMs = (timeline: LiveTimeline, cameraId: string, nodeId: string): number | undefined => {
  const seenAt = timeline.chunks(cameraId).filter((c) => c.nodeId === nodeId && !c.initial).map((c) => c.seenAt)
    .sort((a, b) => a - b)
  const gaps = seenAt.slice(1).map((t, i) => t - seenAt[i]!).sort((a, b) => a - b)
  return gaps.length === 0 ? undefined : gaps[Math.floor(gaps.length / 2)]
}
