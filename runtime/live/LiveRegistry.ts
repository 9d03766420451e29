/**
 * The live streams of the cameras running on this node, by camera id, for
 * the `/live` routes. A camera's actor registers its stream for as long as
 * its pipeline runs. At start it clears `<data>/live`, where a node that was
 * killed may have left chunk directories (the data dir lock guarantees no
 * other node uses them).
 */
import { Context, Deferred, Effect, Layer, Option } from "effect"
import type { Scope } from "effect/Scope"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { NodeConfig } from "../config/NodeConfig.ts"
import type { LiveStream } from "./LiveStream.ts"

export class LiveRegistry extends Context.Service<LiveRegistry, {
  /** Registers the stream until the scope closes. */
  readonly register: (cameraId: string, stream: LiveStream) => Effect.Effect<void, never, Scope>
  readonly get: (cameraId: string) => Option.Option<LiveStream>
  /**
   * The camera's stream once one is registered that is not `previous` (a
   * pipeline restarted with a new URL registers a new stream): for
   * consumers that follow a camera, such as its recording segmenter.
   */
  readonly next: (cameraId: string, previous?: LiveStream | undefined) => Effect.Effect<LiveStream>
}>()("vms/runtime/live/LiveRegistry") {
  static readonly layer = Layer.effect(LiveRegistry, Effect.gen(function*() {
    const config = yield* NodeConfig
    yield* Effect.promise(() => fs.rm(path.resolve(config.dataDir, "live"), { recursive: true, force: true }))
    const streams = new Map<string, LiveStream>()
    const waiters = new Map<string, Set<Deferred.Deferred<LiveStream>>>()
    return LiveRegistry.of({
      register: (cameraId, stream) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            streams.set(cameraId, stream)
            const waiting = waiters.get(cameraId)
            waiters.delete(cameraId)
            for (const waiter of waiting ?? []) Deferred.doneUnsafe(waiter, Effect.succeed(stream))
          }),
          () => Effect.sync(() => {
            if (streams.get(cameraId) === stream) streams.delete(cameraId)
          })
        ).pipe(Effect.asVoid),
      get: (cameraId) => Option.fromNullishOr(streams.get(cameraId)),
      next: (cameraId, previous) =>
        Effect.suspend(() => {
          const current = streams.get(cameraId)
          if (current !== undefined && current !== previous) return Effect.succeed(current)
          const waiter = Deferred.makeUnsafe<LiveStream>()
          const waiting = waiters.get(cameraId) ?? new Set()
          waiting.add(waiter)
          waiters.set(cameraId, waiting)
          return Deferred.await(waiter).pipe(
            Effect.onInterrupt(() => Effect.sync(() => waiters.get(cameraId)?.delete(waiter)))
          )
        })
    })
  }))
}
