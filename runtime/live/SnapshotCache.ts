/**
 * A camera's snapshots, from its live chunks. A request takes the newest
 * chunk's first frame (one short ffmpeg run, ~100–250 ms on a busy node);
 * while snapshots are being asked for (a dashboard polling), every new chunk
 * is decoded in the background as it arrives, so requests are answered from
 * a picture at most ~2 s old without waiting. Nobody asking: nothing decoded.
 * Concurrent requests share one decode.
 */
import { DateTime, Deferred, Effect, Exit, Option } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import type { Scope } from "effect/Scope"
import { Snapshot, SnapshotUnavailable } from "../../actors/CameraProtocol.ts"
import type { LiveChunk, LiveStream } from "./LiveStream.ts"
import * as SnapshotImage from "./Snapshot.ts"
import { jpegSize } from "../../protocols/jpeg/JpegSize.ts"

export interface SnapshotCacheOptions {
  readonly cameraId: string
  readonly ffmpegPath: string
  readonly live: LiveStream
  /** A decoded picture younger than this is answered as is. */
  readonly freshMs: number
  /** After a request, new chunks are decoded ahead for this long. */
  readonly demandMs: number
}

export interface SnapshotCache {
  readonly take: Effect.Effect<Snapshot, SnapshotUnavailable>
}

export const make = (
  options: SnapshotCacheOptions
): Effect.Effect<SnapshotCache, never, Scope | ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function*() {
    const { cameraId, live } = options
    const context = yield* Effect.context<ChildProcessSpawner.ChildProcessSpawner>()
    const scope = yield* Effect.scope
    let ready: { readonly snapshot: Snapshot; readonly at: number } | undefined
    let inflight: Deferred.Deferred<Snapshot, SnapshotUnavailable> | undefined
    let lastDemand = 0

    /** Decodes `chunk` unless a decode is running; resolves the shared deferred. */
    const decode = (chunk: LiveChunk) =>
      Effect.suspend(() => {
        if (inflight !== undefined) return Effect.succeed(inflight)
        const deferred = Deferred.makeUnsafe<Snapshot, SnapshotUnavailable>()
        inflight = deferred
        return SnapshotImage.fromChunk(options.ffmpegPath, chunk.path).pipe(
          Effect.flatMap((jpeg) =>
            Effect.map(DateTime.now, (takenAt) => {
              const size = jpegSize(jpeg) ?? { width: 0, height: 0 }
              return new Snapshot({ cameraId, jpeg, ...size, takenAt })
            })
          ),
          Effect.mapError((error) => new SnapshotUnavailable({ cameraId, message: error.message })),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit)) ready = { snapshot: exit.value, at: Date.now() }
              inflight = undefined
              Deferred.doneUnsafe(deferred, exit)
            })
          ),
          Effect.provideContext(context),
          Effect.forkIn(scope),
          Effect.as(deferred)
        )
      })

    // Decode ahead while someone is asking (a plain listener: no fiber wakes per chunk otherwise).
    yield* live.onChunk((chunk) => {
      if (Date.now() - lastDemand < options.demandMs) Effect.runFork(decode(chunk))
    })

    const take = Effect.gen(function*() {
      const now = Date.now()
      lastDemand = now
      if (ready !== undefined && now - ready.at < options.freshMs) return ready.snapshot
      if (inflight !== undefined) return yield* Deferred.await(inflight)
      const newest = yield* live.newest
      if (Option.isNone(newest)) {
        return yield* new SnapshotUnavailable({ cameraId, message: "no live video yet" })
      }
      return yield* Deferred.await(yield* decode(newest.value))
    })
    return { take }
  })
