/**
 * The work each shard's lease must outlive (`ShardHandoff`): a camera's
 * ffmpeg closing its last chunk and its live tail being saved. No release of
 * a held shard goes out while its holds last, whoever asks for it:
 *
 * - the node is leaving: a shard goes the moment its last hold ends, before
 *   effect/cluster's own release (which comes after the node's last entity);
 * - effect/cluster releases a shard (or all of them) while a hold lasts: an
 *   entity's termination is bounded (and a forced handoff does not wait for
 *   it), so a stopping camera may still be cleaning up when Sharding moves
 *   on. The release waits for the holds, and the lease is renewed meanwhile:
 *   released at once, a successor could start its ffmpeg while this node's
 *   still runs;
 * - the storage closes: it waits (bounded) for the holds, then releases what
 *   waited, so a node does not exit with a camera's tail unsaved and its
 *   lease left to lapse.
 *
 * Each hold is bounded itself: a camera's stop waits at most 1.5 s for its
 * keyframe, ffmpeg gets 1 s after SIGTERM before SIGKILL, and a tail save is
 * a NATS round trip.
 */
import { Deferred, Effect } from "effect"
import type { Scope } from "effect/Scope"
import * as Notice from "./Notice.ts"
import { ShardHandoff } from "./ShardLeases.ts"

export const make = (release: (shardId: string) => Effect.Effect<void>) => {
  let leaving = false
  const holds = new Map<string, number>()
  /** Released by Sharding (or by `releaseAll`) while held: released when the holds end. */
  const deferred = new Set<string>()
  /** Fired whenever a shard's last hold ends. */
  const holdEnded = Notice.make()

  const releaseNow = (shardId: string) => Effect.suspend(() => {
    deferred.delete(shardId)
    return release(shardId)
  })

  const hold = (shardId: string): Effect.Effect<void, never, Scope> =>
    Effect.acquireRelease(
      Effect.sync(() => void holds.set(shardId, (holds.get(shardId) ?? 0) + 1)),
      () =>
        Effect.suspend(() => {
          const left = (holds.get(shardId) ?? 1) - 1
          if (left > 0) {
            holds.set(shardId, left)
            return Effect.void
          }
          holds.delete(shardId)
          holdEnded.fire()
          return leaving || deferred.has(shardId) ? releaseNow(shardId) : Effect.void
        })
    )

  return {
    service: ShardHandoff.of({ hold, leaving: () => leaving }),
    /** The node is stopping: from now on a shard goes when its last hold ends. */
    leave: () => {
      leaving = true
    },
    /** Releases the shard now, or when its holds end. */
    release: (shardId: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if ((holds.get(shardId) ?? 0) === 0) return releaseNow(shardId)
        deferred.add(shardId)
        return Effect.void
      }),
    /** Shards released while held: their leases are still renewed. */
    deferred: (): ReadonlyArray<string> => [...deferred],
    /**
     * Waits until no shard is held (for at most `ms`), then releases what waited. A shard still
     * held then is not released: its camera may still run here, so its lease lapses instead,
     * after this process (and with it the camera's ffmpeg) is gone.
     */
    drain: (ms: number): Effect.Effect<void> =>
      Effect.gen(function*() {
        const until = Date.now() + ms
        while (holds.size > 0 && Date.now() < until) {
          yield* Deferred.await(holdEnded.next()).pipe(Effect.timeoutOption(Math.max(1, until - Date.now())))
        }
        const free = [...deferred].filter((shardId) => !holds.has(shardId))
        yield* Effect.forEach(free, releaseNow, { concurrency: "unbounded", discard: true })
      })
  }
}
