/**
 * The shards of the default group, the same in both modes: how many there
 * are, how many this runner holds, and the `shards` readiness check (which
 * also feeds `vms_shards_owned`).
 */
import { Effect, Layer } from "effect"
import { Sharding, ShardId } from "effect/cluster"
import { Readiness } from "../health/Readiness.ts"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"

export const shardsPerGroup = 300

/** Counts the shards of the default group this runner holds. */
export const ownedShards = (sharding: Sharding.Sharding["Service"]): number => {
  let owned = 0
  for (let id = 1; id <= shardsPerGroup; id++) if (sharding.hasShardId(ShardId.make("default", id))) owned++
  return owned
}

export const shardsReadiness = Layer.effectDiscard(
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const sharding = yield* Sharding.Sharding
    const metrics = yield* ClusterMetrics
    metrics.view.shardsOwned = () => ownedShards(sharding)
    yield* readiness.register(
      "shards",
      Effect.gen(function*() {
        if (yield* sharding.isShutdown) return "sharding is shutting down"
        return ownedShards(sharding) > 0 ? undefined : "no shards assigned to this runner yet"
      })
    )
  })
)
