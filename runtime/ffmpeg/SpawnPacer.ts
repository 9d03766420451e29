/**
 * Staggers ffmpeg starts across the node: each caller gets the next slot
 * `interval` after the previous one, so 200 cameras starting together (node
 * start, a shard moving here, a network blip) spread their RTSP handshakes
 * and ffmpeg start-up cost instead of spawning at once. Every ffmpeg also
 * runs below the node's priority.
 */
import { Context, Duration, Effect, Layer } from "effect"

/** ffmpeg's scheduling priority (nice): the node's own work comes first. */
export const ffmpegNiceness = 10

export class SpawnPacer extends Context.Service<SpawnPacer, {
  /** Waits for this caller's slot. */
  readonly pace: Effect.Effect<void>
}>()("vms/runtime/ffmpeg/SpawnPacer") {
  static readonly make = (interval: Duration.Input) =>
    Layer.sync(SpawnPacer, () => {
      const intervalMs = Duration.toMillis(interval)
      let nextSlot = 0
      return SpawnPacer.of({
        pace: Effect.suspend(() => {
          const now = Date.now()
          const slot = Math.max(now, nextSlot)
          nextSlot = slot + intervalMs
          return slot > now ? Effect.sleep(slot - now) : Effect.void
        })
      })
    })

  static readonly layer = SpawnPacer.make("40 millis")
}
