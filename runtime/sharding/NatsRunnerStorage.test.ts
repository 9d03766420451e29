/**
 * NatsRunnerStorage against a real NATS server, on short leases: a runner
 * that stops (effect/cluster unregisters it first, then stops the entities
 * of each shard and releases the shard) keeps renewing the leases it still
 * holds, so a slow stop (a loaded machine) hands its shards over instead of
 * letting them lapse; `releaseAll` frees what is left.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Runner, RunnerAddress, ShardId } from "effect/cluster"
import { natsUrl, testNamespace } from "../../test/support/Nats.ts"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { Metrics } from "../metrics/Metrics.ts"
import { NatsClient } from "./NatsClient.ts"
import * as NatsRunnerStorage from "./NatsRunnerStorage.ts"
import { shardKey } from "./ShardLeaseBook.ts"

// Short leases, with room for a slow event loop on a busy CI machine (renewals every 0.3 s, 2 s leases).
const timing = { leaseMs: 2_000, marginMs: 400, renewEveryMs: 300 }

describe("NatsRunnerStorage", () => {
  it.live("a stopping runner renews the leases it still holds until it releases them", () =>
    Effect.gen(function*() {
      const url = yield* natsUrl
      const context = yield* Layer.build(Layer.mergeAll(
        NatsClient.layer({ url, namespace: testNamespace(), name: "runner-storage-test" }),
        ClusterMetrics.layer.pipe(Layer.provide(Metrics.layer))
      ))
      const nats = Context.get(context, NatsClient)
      const { storage } = yield* NatsRunnerStorage.make(timing).pipe(Effect.provideContext(context))
      const shards = yield* nats.bucket("shards", { maxAgeMs: timing.leaseMs })
      const address = RunnerAddress.make("stopping", 4000)
      const held = [ShardId.make("default", 1), ShardId.make("default", 2)]
      const holder = () =>
        Effect.promise(() => Promise.all(held.map((id) => shards.get(shardKey(id.toString()))))).pipe(
          Effect.map((entries) => entries.map((entry) => entry?.operation === "PUT" ? entry.string() : undefined))
        )

      yield* storage.register(Runner.make({ address, groups: ["default"], weight: 1 }), true)
      assert.deepStrictEqual((yield* storage.acquire(address, held)).map(String).sort(), held.map(String))
      assert.deepStrictEqual((yield* storage.refresh(address, held)).map(String).sort(), held.map(String))

      // Stopping: out of the membership at once, its entities still stopping for two and a half leases.
      yield* storage.unregister(address)
      const listed = yield* storage.getRunners
      assert.isFalse(listed.some(([runner]) => runner.address.host === "stopping"))
      yield* Effect.sleep(2.5 * timing.leaseMs)
      assert.deepStrictEqual(yield* holder(), ["stopping:4000", "stopping:4000"])

      // One shard handed over, then the rest.
      yield* storage.release(address, held[0]!)
      assert.deepStrictEqual(yield* holder(), [undefined, "stopping:4000"])
      yield* storage.releaseAll(address)
      assert.deepStrictEqual(yield* holder(), [undefined, undefined])
    }).pipe(Effect.scoped))
})
