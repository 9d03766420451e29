/**
 * The live streams of the cameras running on this node, by camera id, for
 * the `/live` routes. A camera's actor registers its stream for as long as
 * its pipeline runs.
 */
import { Context, Effect, Layer, Option } from "effect"
import type { Scope } from "effect/Scope"
import type { LiveStream } from "./LiveStream.ts"

export class LiveRegistry extends Context.Service<LiveRegistry, {
  /** Registers the stream until the scope closes. */
  readonly register: (cameraId: string, stream: LiveStream) => Effect.Effect<void, never, Scope>
  readonly get: (cameraId: string) => Option.Option<LiveStream>
}>()("vms/runtime/live/LiveRegistry") {
  static readonly layer = Layer.sync(LiveRegistry, () => {
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
  })
}
