/**
 * The fleet keeper: a cluster singleton (one in the whole cluster) that makes
 * sure every enabled camera's actor is active. It runs at start and then
 * every `interval`, so a camera whose actor stopped (its shard moved to
 * another node, its node died) comes back by itself, wherever its shard
 * lives now. Waking an actor is cheap: it applies its registration when it
 * starts, and ffmpeg spawns are paced by the node that runs it.
 */
import { type Duration, Effect } from "effect"
import { Singleton } from "effect/cluster"
import { CameraStore } from "../runtime/cameras/CameraStore.ts"
import { Camera } from "./Camera.ts"

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
      let failed = 0
      yield* Effect.forEach(ids, (id) =>
        clientFor(id).Ensure().pipe(
          Effect.timeout("10 seconds"),
          Effect.catch(() => Effect.sync(() => void failed++))
        ), { concurrency: 16, discard: true })
      yield* Effect.logDebug("fleet keeper pass").pipe(
        Effect.annotateLogs({ cameras: ids.length, unreachable: failed, ms: Date.now() - started })
      )
      if (failed > 0) yield* Effect.logWarning("fleet keeper could not reach some cameras").pipe(Effect.annotateLogs({ failed }))
      yield* Effect.sleep(interval)
    }
  }).pipe(Effect.annotateLogs({ actor: "FleetKeeper" }))

export const layer = (interval: Duration.Input = "15 seconds") => Singleton.make("CameraFleetKeeper", keepFleet(interval))
