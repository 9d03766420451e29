/**
 * Sharding on one in-process runner (embedded mode): effect/cluster's
 * `Sharding` with no-op runner transport and health, in-memory runner
 * storage, and the mailbox of persisted messages in Postgres. The NATS
 * layers of cluster mode provide the same services, so actors never know
 * which one they run on. Registers the `shards` readiness check.
 */
import { NodeCrypto } from "@effect/platform-node"
import { Layer } from "effect"
import { RunnerHealth, Runners, RunnerStorage, Sharding, ShardingConfig, SqlMessageStorage } from "effect/cluster"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { OwnershipFence, ShardHandoff } from "./ShardLeases.ts"
import { shardsPerGroup, shardsReadiness } from "./Shards.ts"

export const layer = Layer.mergeAll(shardsReadiness, OwnershipFence.layerLocal, ShardHandoff.layerLocal).pipe(
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
