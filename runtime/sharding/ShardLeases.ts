/**
 * The shard leases this node holds, as its own clock sees them, and the
 * fence that actors consult before every side effect a second owner could
 * also make (starting a pipeline, publishing a status, writing an index row,
 * uploading).
 *
 * A lease is valid until `sentAt + lease - margin`, where `sentAt` is the
 * monotonic time at which the renewal that NATS accepted was *sent*: NATS
 * expires the key no earlier than `lease` after it *received* it, so the owner
 * stops believing in its lease before anyone else can take the shard, even if
 * this process was frozen in between (monotonic time keeps running while a
 * process is stopped). In embedded mode there is one runner and no lease:
 * the fence always passes.
 */
import { Context, Effect, Layer } from "effect"
import { EntityId, Sharding } from "effect/cluster"

/** A monotonic clock in milliseconds. */
export const monotonicNow = (): number => performance.now()

export interface LeaseTable {
  /** Valid until this monotonic time, for each held shard (`group:id`). */
  readonly deadlines: Map<string, number>
}

export const makeLeaseTable = (): LeaseTable => ({ deadlines: new Map() })

export const holds = (table: LeaseTable, shardId: string): boolean => {
  const deadline = table.deadlines.get(shardId)
  return deadline !== undefined && monotonicNow() < deadline
}

export class ShardLeases extends Context.Service<ShardLeases, LeaseTable>()("vms/runtime/sharding/ShardLeases") {}

export class OwnershipFence extends Context.Service<OwnershipFence, {
  /** True while this node may act for the entity `entityId` (of a group-`default` entity type). */
  readonly owns: (entityId: string) => boolean
  /**
   * Completes as soon as this node may no longer act for `entityId`; checked
   * every `pollMs` on the monotonic clock, so a node resumed after a freeze
   * sees its lost leases on the first tick.
   */
  readonly lost: (entityId: string) => Effect.Effect<void>
}>()("vms/runtime/sharding/OwnershipFence") {
  /** Embedded mode: one runner, every entity is ours. */
  static readonly layerLocal = Layer.succeed(OwnershipFence, OwnershipFence.of({
    owns: () => true,
    lost: () => Effect.never
  }))

  /** Cluster mode: ownership is a valid lease on the entity's shard. */
  static readonly layerLeases = (pollMs = 100) =>
    Layer.effect(
      OwnershipFence,
      Effect.gen(function*() {
        const sharding = yield* Sharding.Sharding
        const table = yield* ShardLeases
        const shardOf = (entityId: string) => sharding.getShardId(EntityId.make(entityId), "default").toString()
        const owns = (entityId: string) => holds(table, shardOf(entityId))
        const lost = (entityId: string) =>
          Effect.gen(function*() {
            const shardId = shardOf(entityId)
            while (holds(table, shardId)) yield* Effect.sleep(pollMs)
          })
        return OwnershipFence.of({ owns, lost })
      })
    )
}
