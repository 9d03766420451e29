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
export const wakeOnAcquire = (pollInterval: Duration.Input = "25 millis") =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      const store = yield* CameraStore
      const clientFor = yield* Camera.client
      /** Whether this node holds shard `id` and has woken its cameras (index = shard id). */
      const owned = new Array<boolean>(shardsPerGroup + 1).fill(false)
      const pass = Effect.gen(function*() {
        // Plain booleans every pass; strings only for the shards gained.
        const gainedIds: Array<number> = []
        for (let id = 1; id <= shardsPerGroup; id++) {
          const holds = sharding.hasShardId(ShardId.make("default", id))
          if (holds && !owned[id]) gainedIds.push(id)
          if (!holds) owned[id] = false
        }
        if (gainedIds.length === 0) return
        const gained = new Set(gainedIds.map((id) => ShardId.make("default", id).toString()))
        // A shard counts as woken only once its cameras answered: when the list or a camera
        // fails, a later pass tries those shards again.
        const ids = yield* store.listEnabledIds.pipe(
          Effect.tapError((error) => Effect.logWarning("cannot list the cameras of the shards acquired; retrying").pipe(
            Effect.annotateLogs({ error: error.message })
          )),
          Effect.option
        )
        // Postgres is unreachable: ask again in half a second, not at the pass's pace.
        if (ids._tag === "None") return yield* Effect.sleep("500 millis")
        const mine = ids.value.filter((id) => gained.has(sharding.getShardId(EntityId.make(id), "default").toString()))
        yield* Effect.logDebug("shards acquired; waking their cameras").pipe(
          Effect.annotateLogs({ shards: gained.size, cameras: mine.length })
        )
        const failed = yield* wakeEach(mine, (id) => clientFor(id).Ensure())
        if (failed > 0) {
          return yield* Effect.logWarning("some cameras of the shards acquired did not answer; retrying").pipe(
            Effect.annotateLogs({ failed })
          )
        }
        for (const id of gainedIds) owned[id] = true
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
