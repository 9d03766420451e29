/**
 * Sharding on one in-process runner (embedded mode): effect/cluster's
 * `Sharding` with no-op runner transport and health, in-memory runner
 * storage, and the mailbox of persisted messages in Postgres. The NATS
 * layers of cluster mode provide the same services, so actors never know
 * which one they run on. Registers the `shards` readiness check.
 */
import { NodeCrypto } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import {
  RunnerHealth,
  Runners,
  RunnerStorage,
  Sharding,
  ShardingConfig,
  ShardId,
  SqlMessageStorage
} from "effect/cluster"
import { Readiness } from "../health/Readiness.ts"
import { OwnershipFence } from "./ShardLeases.ts"
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

export const layer = Layer.merge(shardsReadiness, OwnershipFence.layerLocal).pipe(
  Layer.provideMerge(ClusterMetrics.layer),
  Layer.provideMerge(Sharding.layer),
  Layer.provideMerge(Runners.layerNoop),
  Layer.provideMerge(SqlMessageStorage.layer),
  Layer.provide([RunnerStorage.layerMemory, RunnerHealth.layerNoop, NodeCrypto.layerDigest]),
  Layer.provideMerge(
    ShardingConfig.layer({
      shardsPerGroup,
      entityMaxIdleTime: "5 minutes",
      entityTerminationTimeout: "5 seconds",
      preemptiveShutdown: true
    })
  )
)
