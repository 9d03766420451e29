/**
 * The fleet keeper: a cluster singleton (one in the whole cluster) that makes
 * sure every enabled camera's actor is active. It runs at start and then
 * every `interval`, so a camera whose actor stopped (its shard moved to
 * another node, its node died) comes back by itself, wherever its shard
 * lives now. Waking an actor is cheap: it applies its registration when it
 * starts, and ffmpeg spawns are paced by the node that runs it.
 */
import { type Duration, Effect, Layer } from "effect"
import { EntityId, Sharding, ShardId, Singleton } from "effect/cluster"
import { shardsPerGroup } from "../runtime/sharding/Shards.ts"
import { CameraStore } from "../runtime/cameras/CameraStore.ts"
import { Camera } from "./Camera.ts"
import { wakeEach } from "./Wake.ts"

export const keepFleet = (interval: Duration.Input) =>
  Effect.gen(function*() {
    const store = yield* CameraStore
    const clientFor = yield* Camera.client
    while (true) {
      const started = Date.now()
      const ids = yield* store.listEnabledIds.pipe(
        Effect.tapError((error) => Effect.logWarning("fleet keeper cannot list cameras").pipe(
          Effect.annotateLogs({ error: error.message })
        )),
        Effect.orElseSucceed((): ReadonlyArray<string> => [])
      )
      const failed = yield* wakeEach(ids, (id) => clientFor(id).Ensure())
      yield* Effect.logDebug("fleet keeper pass").pipe(
        Effect.annotateLogs({ cameras: ids.length, unreachable: failed, ms: Date.now() - started })
      )
      if (failed > 0) yield* Effect.logWarning("fleet keeper could not reach some cameras").pipe(Effect.annotateLogs({ failed }))
      yield* Effect.sleep(interval)
    }
  }).pipe(Effect.annotateLogs({ actor: "FleetKeeper" }))

/**
 * On every node: as soon as this node acquires shards (at start, when a dead
 * node's leases lapse, when a leaving node hands its shards over), the
 * enabled cameras of those shards are woken here at once instead of at the
 * fleet keeper's next pass. This is what makes failover take seconds.
 */
export const wakeOnAcquire = (pollInterval: Duration.Input = "100 millis") =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      const store = yield* CameraStore
      const clientFor = yield* Camera.client
      /** Whether this node held shard `id` at the last pass (index = shard id). */
      const owned = new Array<boolean>(shardsPerGroup + 1).fill(false)
      const pass = Effect.gen(function*() {
        // Plain booleans every pass; strings only for the shards gained.
        const gained = new Set<string>()
        for (let id = 1; id <= shardsPerGroup; id++) {
          const shardId = ShardId.make("default", id)
          const holds = sharding.hasShardId(shardId)
          if (holds && !owned[id]) gained.add(shardId.toString())
          owned[id] = holds
        }
        if (gained.size === 0) return
        const ids = yield* store.listEnabledIds.pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
        const mine = ids.filter((id) => gained.has(sharding.getShardId(EntityId.make(id), "default").toString()))
        yield* Effect.logDebug("shards acquired; waking their cameras").pipe(
          Effect.annotateLogs({ shards: gained.size, cameras: mine.length })
        )
        yield* wakeEach(mine, (id) => clientFor(id).Ensure())
      })
      yield* pass.pipe(
        Effect.andThen(Effect.sleep(pollInterval)),
        Effect.forever,
        Effect.annotateLogs({ actor: "FleetKeeper" }),
        Effect.forkScoped
      )
    })
  )

export const layer = (interval: Duration.Input = "15 seconds") =>
  Layer.merge(Singleton.make("CameraFleetKeeper", keepFleet(interval)), wakeOnAcquire())
