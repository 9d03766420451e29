/**
 * The live streams of the cameras running on this node, by camera id, for
 * the `/live` routes. A camera's actor registers its stream for as long as
 * its pipeline runs. At start it clears `<data>/live`, where a node that was
 * killed may have left chunk directories (the data dir lock guarantees no
 * other node uses them).
 */
import { Context, Effect, Layer, Option } from "effect"
import type { Scope } from "effect/Scope"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { NodeConfig } from "../config/NodeConfig.ts"
import type { LiveStream } from "./LiveStream.ts"

export class LiveRegistry extends Context.Service<LiveRegistry, {
  /** Registers the stream until the scope closes. */
  readonly register: (cameraId: string, stream: LiveStream) => Effect.Effect<void, never, Scope>
  readonly get: (cameraId: string) => Option.Option<LiveStream>
}>()("vms/runtime/live/LiveRegistry") {
  static readonly layer = Layer.effect(LiveRegistry, Effect.gen(function*() {
    const config = yield* NodeConfig
    yield* Effect.promise(() => fs.rm(path.resolve(config.dataDir, "live"), { recursive: true, force: true }))
    const streams = new Map<string, LiveStream>()
    return LiveRegistry.of({
      register: (cameraId, stream) =>
        Effect.acquireRelease(
          Effect.sync(() => streams.set(cameraId, stream)),
          () => Effect.sync(() => {
            if (streams.get(cameraId) === stream) streams.delete(cameraId)
          })
        ).pipe(Effect.asVoid),
      get: (cameraId) => Option.fromNullishOr(streams.get(cameraId))
    })
  }))
}
