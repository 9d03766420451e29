/**
 * A camera's live HLS stream on this node: the chunk directory
 * `<data>/live/<cameraId>/`, the sliding playlist over the chunks, and the
 * deletion of chunks that left it (after a grace window, so a player that
 * loaded the previous playlist still gets its segments). Chunk numbering and
 * discontinuities carry across ffmpeg runs, and across nodes when the
 * camera moves (`tail` on the old owner, `expectTail` and `seed` on the new
 * one). Scoped:
 * closing it removes the directory. Finished chunks are also published, for
 * consumers such as the recorder.
 */
import { Deferred, Effect, Exit, Option, PubSub, Ref } from "effect"
import type { Scope } from "effect/Scope"
import * as fsSync from "node:fs"
import * as path from "node:path"
import * as LivePlaylist from "../../protocols/hls/LivePlaylist.ts"
import { chunkFilePattern } from "../ffmpeg/IngestProcess.ts"
import type { LiveTail, TailChunk, TailHeader, TailLimits } from "./LiveHandover.ts"

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
  /**
   * The newest listed chunks, files included, up to `limits.maxChunks` of
   * them and `limits.maxBytes` in all: what a successor needs to go on from here.
   */
  readonly tail: (cameraId: string, nodeId: string, limits: TailLimits) => Effect.Effect<LiveTail | undefined>
  /**
   * A predecessor's tail is on its way (its header came first): numbering
   * goes on from the tail's last chunk at once, so ffmpeg can start, and
   * this stream's first chunk is not listed before `seed` (for at most
   * `tailWaitMs`). False, and nothing changes, once the stream has run.
   */
  readonly expectTail: (header: TailHeader) => Effect.Effect<boolean>
  /**
   * Starts an empty stream with a predecessor's tail: its chunks are listed
   * as they were (numbers, media times), and this node's first chunk follows
   * them after a discontinuity. They are not published: the predecessor's
   * recorder had them. Ignored once this stream has chunks of its own, or
   * has run without expecting the tail; `undefined` (the bytes are lost)
   * lists nothing and ends the wait.
   */
  readonly seed: (tail: LiveTail | undefined) => Effect.Effect<void>
}

/** The longest a stream's first chunk waits for an expected tail to be listed before it. */
export const tailWaitMs = 3_000

interface State {
  readonly playlist: LivePlaylist.LivePlaylist
  /** Chunks out of the playlist but still on disk, oldest first. */
  readonly grace: ReadonlyArray<LiveChunk>
  readonly nextNumber: number
  readonly runs: number
  readonly discontinuityPending: boolean
}

/** The tail's chunks a stream would list: names it would serve, numbers that go up (indexes into `chunks`). */
const usableChunks = (chunks: ReadonlyArray<TailChunk>): Array<number> => {
  const usable: Array<number> = []
  let last: number | undefined
  chunks.forEach((chunk, i) => {
    // Only chunk names this stream would serve (a tail never writes outside its directory), in order.
    if (!chunkFilePattern.test(chunk.uri) || (last !== undefined && chunk.sequence <= last)) return
    last = chunk.sequence
    usable.push(i)
  })
  return usable
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

/** How long a discarded directory stays before it is deleted. */
const discardDelayMs = 3_000

/**
 * Out of the way at once (one rename), deleted a few seconds later in the
 * background: a camera that stops or moves does not wait for a dozen unlinks
 * before its shard can go to the next owner, and a stopping node spends the
 * first seconds of its stop on handing its cameras over (on a loaded 2-core
 * machine, a dozen cameras' recursive deletes took ~0.2 s of the node's
 * event loop right then). A stream made again in the same place never meets
 * the old files; a node that exits before the delay leaves them, and the
 * camera's next stream on this data dir deletes them.
 */
const discardDir = (dir: string) =>
  Effect.sync(() => {
    const gone = `${dir}${goneMarker}${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
    try {
      fsSync.renameSync(dir, gone)
    } catch {
      return
    }
    setTimeout(() => fsSync.rm(gone, { force: true, recursive: true }, () => {}), discardDelayMs).unref()
  })

const goneMarker = ".gone-"

/** Deletes what earlier processes discarded of `dir` and could not delete before they exited. */
const deleteLeftovers = (dir: string) =>
  Effect.sync(() => {
    const parent = path.dirname(dir)
    const prefix = `${path.basename(dir)}${goneMarker}`
    let names: Array<string>
    try {
      names = fsSync.readdirSync(parent)
    } catch {
      return
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || name.startsWith(`${prefix}${process.pid}-`)) continue
      fsSync.rm(path.join(parent, name), { force: true, recursive: true }, () => {})
    }
  })

export const make = (options: LiveStreamOptions): Effect.Effect<LiveStream, never, Scope> =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(
      discardDir(options.dir).pipe(
        Effect.andThen(deleteLeftovers(options.dir)),
        Effect.andThen(Effect.sync(() => void fsSync.mkdirSync(options.dir, { recursive: true })))
      ),
      () => discardDir(options.dir)
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
    // Set from `expectTail` until the tail is seeded (or the first own chunk gave up waiting for it):
    // the first chunk of this stream's own waits on it.
    let tailGate: Deferred.Deferred<void> | undefined

    // Every run's first chunk carries a discontinuity, the first run's too: a player that followed
    // the camera from its previous owner (or an earlier ffmpeg) gets timestamps that start over.
    const beginRun = Ref.modify(state, (s) => [
      s.nextNumber,
      { ...s, runs: s.runs + 1, discontinuityPending: true }
    ])

    const chunkFinished = (file: string, durationSeconds: number) =>
      Effect.gen(function*() {
        if (tailGate !== undefined) {
          // Once: a tail that has not come by then is given up (a late seed finds this chunk listed).
          yield* Deferred.await(tailGate).pipe(Effect.timeout(tailWaitMs), Effect.ignore)
          tailGate = undefined
        }
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

    const tail = (cameraId: string, nodeId: string, { maxBytes, maxChunks }: TailLimits) =>
      Effect.gen(function*() {
        const { playlist } = yield* Ref.get(state)
        const picked: Array<LivePlaylist.LiveSegment> = []
        let bytes = 4_096
        for (const segment of [...playlist.segments].reverse()) {
          if (picked.length === maxChunks || bytes + segment.bytes + 256 > maxBytes) break
          bytes += segment.bytes + 256
          picked.unshift(segment)
        }
        // Synchronous: from the page cache, on a node that is handing the camera over; the thread
        // pool may be queued behind the other cameras' file work, and the successor waits for this.
        const files = picked.map((segment) => {
          try {
            return fsSync.readFileSync(path.join(options.dir, segment.uri))
          } catch {
            return undefined
          }
        })
        // A chunk deleted meanwhile ends the tail before it: what follows would leave a hole.
        const unreadable = files.findIndex((file) => file === undefined)
        const count = unreadable === -1 ? picked.length : unreadable
        if (count === 0) return undefined
        const before = playlist.segments.slice(0, playlist.segments.length - picked.length)
        const chunks: Array<TailChunk> = picked.slice(0, count).map((segment, i) => ({
          sequence: segment.sequence,
          uri: segment.uri,
          durationSeconds: segment.durationSeconds,
          discontinuity: segment.discontinuity,
          programDateTime: segment.programDateTime.toISOString(),
          bytes: files[i]!.length
        }))
        const tail: LiveTail = {
          header: {
            cameraId,
            nodeId,
            savedAt: Date.now(),
            discontinuitySequence: playlist.discontinuitySequence + before.filter((b) => b.discontinuity).length,
            chunks
          },
          files: files.slice(0, count) as Array<Buffer>
        }
        return tail
      })

    const expectTail = (header: TailHeader) =>
      Ref.modify(state, (s): [boolean, State] => {
        const usable = usableChunks(header.chunks)
        if (s.runs > 0 || s.playlist.segments.length > 0 || usable.length === 0) return [false, s]
        tailGate = Deferred.makeUnsafe<void>()
        return [true, { ...s, nextNumber: header.chunks[usable.at(-1)!]!.sequence + 1 }]
      })

    const seed = (given: LiveTail | undefined) =>
      Ref.update(state, (s) => {
        if (given === undefined || s.playlist.segments.length > 0 || (s.runs > 0 && tailGate === undefined)) return s
        // All or nothing: the numbering expectTail set goes on from the tail's last chunk.
        const usable = usableChunks(given.header.chunks)
        const segments: Array<LiveChunk> = []
        for (const i of usable) {
          const chunk = given.header.chunks[i]!
          // Synchronous: a few hundred kilobytes into the page cache, once per move, while ffmpeg
          // starts; the thread pool may be queued behind other cameras' file work.
          const filePath = path.join(options.dir, chunk.uri)
          try {
            fsSync.writeFileSync(filePath, given.files[i]!)
          } catch {
            return s
          }
          segments.push({
            sequence: chunk.sequence,
            uri: chunk.uri,
            path: filePath,
            durationSeconds: chunk.durationSeconds,
            discontinuity: chunk.discontinuity,
            programDateTime: new Date(chunk.programDateTime),
            bytes: chunk.bytes
          })
        }
        if (segments.length === 0) return s
        let playlist: LivePlaylist.LivePlaylist = { ...s.playlist, discontinuitySequence: given.header.discontinuitySequence }
        for (const segment of segments) playlist = LivePlaylist.append(playlist, segment).playlist
        // Numbering goes on from the predecessor's: a player sees one media sequence across the move.
        return { ...s, playlist, nextNumber: segments.at(-1)!.sequence + 1 }
      }).pipe(Effect.ensuring(Effect.sync(() => {
        if (tailGate !== undefined) Deferred.doneUnsafe(tailGate, Exit.void)
        tailGate = undefined
      })))

    return { dir: options.dir, beginRun, chunkFinished, playlist, newest, chunks, onChunk, resolve, tail, expectTail, seed }
  })
