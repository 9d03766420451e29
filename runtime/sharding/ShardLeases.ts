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
import { Context, Deferred, Effect, Layer } from "effect"
import type { Scope } from "effect/Scope"
import { EntityId, Sharding } from "effect/cluster"
import * as Notice from "./Notice.ts"

/** A monotonic clock in milliseconds. */
export const monotonicNow = (): number => performance.now()

export interface LeaseTable {
  /** Valid until this monotonic time, for each held shard (`group:id`). */
  readonly deadlines: Map<string, number>
  /** Fired each time a lease is taken: what a wait for ownership wakes on. */
  readonly taken: Notice.Notice
}

export const makeLeaseTable = (): LeaseTable => ({ deadlines: new Map(), taken: Notice.make() })

export const holds = (table: LeaseTable, shardId: string): boolean => {
  const deadline = table.deadlines.get(shardId)
  return deadline !== undefined && monotonicNow() < deadline
}

export class ShardLeases extends Context.Service<ShardLeases, LeaseTable>()("vms/runtime/sharding/ShardLeases") {}

export class OwnershipFence extends Context.Service<OwnershipFence, {
  /** True while this node may act for the entity `entityId` (of a group-`default` entity type). */
  readonly owns: (entityId: string) => boolean
  /**
   * Completes as soon as this node may act for `entityId`: at once when it
   * holds the lease, else the moment the lease is taken (or, for a lease that
   * lapsed only locally and was renewed, within `pollMs`).
   */
  readonly untilOwned: (entityId: string) => Effect.Effect<void>
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
    untilOwned: () => Effect.void,
    lost: () => Effect.never
  }))

  /** Cluster mode: ownership is a valid lease on the entity's shard. */
  static readonly layerLeases = (pollMs = 100) =>
    Layer.effect(
      OwnershipFence,
      Effect.gen(function*() {
        const sharding = yield* Sharding.Sharding
        const table = yield* ShardLeases
        return fenceOf(table, (entityId) => sharding.getShardId(EntityId.make(entityId), "default").toString(), pollMs)
      })
    )
}

/**
 * Work on a shard that its lease must outlive while the node stops: a
 * camera's ffmpeg closing its last chunk and the live tail saved for its
 * successor. effect/cluster releases a stopping node's shards only after
 * every entity of the node has stopped; in cluster mode each shard's lease
 * goes instead the moment the last such work on it ends, so each camera
 * moves as soon as its own stop is done. What else runs on the shard acts
 * only through the ownership fence, which the release closes.
 */
export class ShardHandoff extends Context.Service<ShardHandoff, {
  /**
   * Keeps the shard's lease until the scope closes: no release of it goes out
   * meanwhile (Sharding's own included); a leaving node releases it then.
   */
  readonly hold: (shardId: string) => Effect.Effect<void, never, Scope>
  /** The node is stopping and hands its shards to other nodes. */
  readonly leaving: () => boolean
}>()("vms/runtime/sharding/ShardHandoff") {
  /** Embedded mode: no lease, nobody to hand over to. */
  static readonly layerLocal = Layer.succeed(ShardHandoff, ShardHandoff.of({ hold: () => Effect.void, leaving: () => false }))
}

/** The fence of a lease table: an entity is owned while the lease on its shard (`shardOf`) is valid. */
export const fenceOf = (table: LeaseTable, shardOf: (entityId: string) => string, pollMs = 100): OwnershipFence["Service"] =>
  OwnershipFence.of({
    owns: (entityId) => holds(table, shardOf(entityId)),
    untilOwned: (entityId) =>
      Effect.gen(function*() {
        const shardId = shardOf(entityId)
        // The signal is read before the lease is checked, so a take between the two is not missed.
        while (true) {
          const taken = table.taken.next()
          if (holds(table, shardId)) return
          yield* Deferred.await(taken).pipe(Effect.timeoutOption(pollMs))
        }
      }),
    lost: (entityId) =>
      Effect.gen(function*() {
        const shardId = shardOf(entityId)
        while (holds(table, shardId)) yield* Effect.sleep(pollMs)
      })
  })

/**
 * Runs `effect` (which runs until interrupted, an ffmpeg pipeline say) while
 * this node may act for `entityId`: the moment the lease lapses it is
 * interrupted and `onLost` runs; once the lease is valid again it starts
 * anew. A lapse can be only local (an event loop that stalled past the
 * lease's margin, then renewed the lease after all); when another node took
 * the shard instead, sharding stops the entity, and this wait with it.
 */
export const whileOwned = <E, R, R2>(
  fence: OwnershipFence["Service"],
  entityId: string,
  effect: Effect.Effect<never, E, R>,
  onLost: Effect.Effect<void, never, R2>
): Effect.Effect<never, E, R | R2> =>
  Effect.gen(function*() {
    while (true) {
      yield* fence.untilOwned(entityId)
      yield* Effect.raceFirst(effect, fence.lost(entityId))
      yield* onLost
    }
  })
