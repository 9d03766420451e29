/**
 * A camera's live HLS stream on this node: the chunk directory
 * `<data>/live/<cameraId>/`, the sliding playlist over the chunks, and the
 * deletion of chunks that left it (after a grace window, so a player that
 * loaded the previous playlist still gets its segments). Chunk numbering and
 * discontinuities carry across ffmpeg runs. Scoped: closing it removes the
 * directory. Finished chunks are also published, for consumers such as the
 * recorder.
 */
import { Effect, Option, PubSub, Ref } from "effect"
import type { Scope } from "effect/Scope"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as LivePlaylist from "../../protocols/hls/LivePlaylist.ts"

export interface LiveChunk extends LivePlaylist.LiveSegment {
  readonly path: string
}

export interface LiveStreamOptions {
  readonly dir: string
  /** Segments listed in the playlist. */
  readonly windowSize: number
  /** Segments kept on disk after leaving the playlist. */
  readonly graceSize: number
}

export interface LiveStream {
  readonly dir: string
  /** Called before each ffmpeg run: the number its first chunk gets. */
  readonly beginRun: Effect.Effect<number>
  /** A chunk finished: list it, evict old ones. */
  readonly chunkFinished: (file: string, durationSeconds: number) => Effect.Effect<LiveChunk | undefined>
  readonly playlist: Effect.Effect<Option.Option<string>>
  readonly newest: Effect.Effect<Option.Option<LiveChunk>>
  /** Chunks as they finish. */
  readonly chunks: PubSub.PubSub<LiveChunk>
  /**
   * Calls `listener` synchronously for each chunk as it finishes, for as long
   * as the scope lasts: for per-chunk work on the hot path that must not cost
   * a fiber wake-up per camera per second.
   */
  readonly onChunk: (listener: (chunk: LiveChunk) => void) => Effect.Effect<void, never, Scope>
  /** Resolves a segment name from a request to a file of this stream, if it is listed or in grace. */
  readonly resolve: (file: string) => Effect.Effect<Option.Option<string>>
}

interface State {
  readonly playlist: LivePlaylist.LivePlaylist
  /** Chunks out of the playlist but still on disk, oldest first. */
  readonly grace: ReadonlyArray<LiveChunk>
  readonly nextNumber: number
  readonly runs: number
  readonly discontinuityPending: boolean
}

/**
 * Chunks last at least a second, so numbering from the clock's seconds keeps
 * sequence numbers increasing across actor restarts and moves between nodes.
 */
const firstNumber = () => Math.floor(Date.now() / 1000) - 1_700_000_000

const statQuietly = (file: string) => {
  try {
    return fsSync.statSync(file)
  } catch {
    return undefined
  }
}

/**
 * Fire and forget on the thread pool: under a hundred ffmpegs writing to the
 * same file system a synchronous unlink waits on the journal and stalls the
 * event loop, and nothing waits for the deletion. A file already gone is fine.
 */
const unlinkQuietly = (file: string) => fsSync.unlink(file, () => {})

const removeQuietly = (file: string) => Effect.promise(() => fs.rm(file, { force: true, recursive: true }))

export const make = (options: LiveStreamOptions): Effect.Effect<LiveStream, never, Scope> =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        await fs.rm(options.dir, { recursive: true, force: true })
        await fs.mkdir(options.dir, { recursive: true })
      }),
      () => removeQuietly(options.dir)
    )
    const chunks = yield* Effect.acquireRelease(PubSub.sliding<LiveChunk>(64), PubSub.shutdown)
    const listeners = new Set<(chunk: LiveChunk) => void>()
    const state = yield* Ref.make<State>({
      playlist: LivePlaylist.empty(options.windowSize),
      grace: [],
      nextNumber: firstNumber(),
      runs: 0,
      discontinuityPending: false
    })

    const beginRun = Ref.modify(state, (s) => [
      s.nextNumber,
      { ...s, runs: s.runs + 1, discontinuityPending: s.runs > 0 }
    ])

    const chunkFinished = (file: string, durationSeconds: number) =>
      Effect.gen(function*() {
        const match = /^seg_(\d+)\.ts$/.exec(file)
        if (match === null) return undefined
        const filePath = path.join(options.dir, file)
        // Synchronous metadata calls: a few microseconds each, cheaper than a thread-pool round trip
        // at one chunk per camera per second.
        const stat = statQuietly(filePath)
        if (stat === undefined) return undefined
        const sequence = Number(match[1])
        const now = Date.now()
        const toDelete: Array<LiveChunk> = []
        const chunk = yield* Ref.modify(state, (s): [LiveChunk, State] => {
          const chunk: LiveChunk = {
            sequence,
            uri: file,
            path: filePath,
            durationSeconds,
            discontinuity: s.discontinuityPending,
            programDateTime: new Date(now - Math.round(durationSeconds * 1000)),
            bytes: stat.size
          }
          const { evicted, playlist } = LivePlaylist.append(s.playlist, chunk)
          const grace = [...s.grace, ...(evicted as ReadonlyArray<LiveChunk>)]
          toDelete.push(...grace.slice(0, Math.max(0, grace.length - options.graceSize)))
          return [chunk, {
            ...s,
            playlist,
            grace: grace.slice(toDelete.length),
            nextNumber: Math.max(s.nextNumber, sequence + 1),
            discontinuityPending: false
          }]
        })
        for (const old of toDelete) unlinkQuietly(old.path)
        for (const listener of listeners) listener(chunk)
        yield* PubSub.publish(chunks, chunk)
        return chunk
      })

    const playlist = Effect.map(
      Ref.get(state),
      (s) => s.playlist.segments.length === 0 ? Option.none() : Option.some(LivePlaylist.render(s.playlist))
    )
    const newest = Effect.map(Ref.get(state), (s) => Option.fromNullishOr(s.playlist.segments.at(-1) as LiveChunk | undefined))
    const resolve = (file: string) =>
      Effect.map(Ref.get(state), (s) => {
        const found = [...s.playlist.segments, ...s.grace].find((segment) => segment.uri === file) as LiveChunk | undefined
        return Option.fromNullishOr(found?.path)
      })

    const onChunk = (listener: (chunk: LiveChunk) => void) =>
      Effect.acquireRelease(
        Effect.sync(() => void listeners.add(listener)),
        () => Effect.sync(() => void listeners.delete(listener))
      )

    return { dir: options.dir, beginRun, chunkFinished, playlist, newest, chunks, onChunk, resolve }
  })
