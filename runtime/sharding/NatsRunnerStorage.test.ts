/**
 * NatsRunnerStorage against a real NATS server, on short leases: a runner
 * that stops (effect/cluster unregisters it first, then stops the entities
 * of each shard and releases the shard) keeps renewing the leases it still
 * holds, so a slow stop (a loaded machine) hands its shards over instead of
 * letting them lapse; `releaseAll` frees what is left. A survivor's
 * acquisition round that waits for such a leaver does not answer early with
 * part of its shards (Sharding would sleep a second before the next round),
 * and takes a shard as soon as the leaver announces its release.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { Runner, RunnerAddress, ShardId } from "effect/cluster"
import { natsUrl, testNamespace } from "../../test/support/Nats.ts"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { Metrics } from "../metrics/Metrics.ts"
import { NatsClient } from "./NatsClient.ts"
import * as NatsRunnerStorage from "./NatsRunnerStorage.ts"
import { shardKey } from "./ShardLeaseBook.ts"

// Short leases, with room for a slow event loop on a busy CI machine (renewals every 0.3 s, 2 s leases).
const timing = { leaseMs: 2_000, marginMs: 400, renewEveryMs: 300 }

/** A runner's storage on its own NATS connection, as each node has. */
const storageOf = (url: string, namespace: string, name: string, leaseTiming: typeof timing & { readonly leaverPollMs?: number } = timing) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.mergeAll(
      NatsClient.layer({ url, namespace, name }),
      ClusterMetrics.layer.pipe(Layer.provide(Metrics.layer))
    ))
    return (yield* NatsRunnerStorage.make(leaseTiming).pipe(Effect.provideContext(context))).storage
  })

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

  it.live("a round waiting for a leaver's release answers once it has every shard, not with part of them", () =>
    Effect.gen(function*() {
      const url = yield* natsUrl
      const namespace = testNamespace()
      const leaver = yield* storageOf(url, namespace, "leaver")
      const survivor = yield* storageOf(url, namespace, "survivor")
      const leaverAddress = RunnerAddress.make("leaver", 4001)
      const survivorAddress = RunnerAddress.make("survivor", 4002)
      const shards = [ShardId.make("default", 3), ShardId.make("default", 4)]
      yield* leaver.register(Runner.make({ address: leaverAddress, groups: ["default"], weight: 1 }), true)
      yield* survivor.register(Runner.make({ address: survivorAddress, groups: ["default"], weight: 1 }), true)
      assert.strictEqual((yield* leaver.acquire(leaverAddress, shards)).length, 2)
      yield* leaver.refresh(leaverAddress, shards)

      // SIGTERM: the leaver leaves the membership, then releases one shard after 0.5 s and the
      // other after 1.3 s (its cameras stop at different speeds on a loaded machine).
      yield* leaver.unregister(leaverAddress)
      const start = Date.now()
      yield* Effect.forkScoped(Effect.gen(function*() {
        yield* Effect.sleep("500 millis")
        yield* leaver.release(leaverAddress, shards[0]!)
        yield* Effect.sleep("800 millis")
        yield* leaver.release(leaverAddress, shards[1]!)
      }))

      // The survivor's acquisition loop as Sharding runs it: a round gets 1 s, one that runs
      // over is retried at once, and the first that answers is what it starts.
      const rounds: Array<string> = []
      let answered: ReadonlyArray<ShardId.ShardId> | undefined
      while (answered === undefined && Date.now() - start < 5_000) {
        const round = yield* survivor.acquire(survivorAddress, shards).pipe(Effect.timeoutOption("1 second"))
        rounds.push(Option.isNone(round) ? `ran over at ${Date.now() - start} ms` : `answered at ${Date.now() - start} ms`)
        if (Option.isSome(round)) answered = round.value
      }
      assert.deepStrictEqual(answered?.map(String).sort(), shards.map(String), rounds.join(", "))
      assert.isBelow(Date.now() - start, 1_300 + 600, rounds.join(", "))
    }).pipe(Effect.scoped))

  it.live("a survivor takes a leaver's shard when the release is announced, not at its next read", () =>
    Effect.gen(function*() {
      const url = yield* natsUrl
      const namespace = testNamespace()
      // No read again within the leaver grace (2 s): only the announcement can end the wait early.
      const slowReads = { ...timing, leaverPollMs: 60_000 }
      const leaver = yield* storageOf(url, namespace, "leaver", slowReads)
      const survivor = yield* storageOf(url, namespace, "survivor", slowReads)
      const leaverAddress = RunnerAddress.make("leaver", 4003)
      const survivorAddress = RunnerAddress.make("survivor", 4004)
      const shard = [ShardId.make("default", 5)]
      yield* leaver.register(Runner.make({ address: leaverAddress, groups: ["default"], weight: 1 }), true)
      yield* survivor.register(Runner.make({ address: survivorAddress, groups: ["default"], weight: 1 }), true)
      assert.strictEqual((yield* leaver.acquire(leaverAddress, shard)).length, 1)
      yield* leaver.refresh(leaverAddress, shard)
      yield* leaver.unregister(leaverAddress)
      const start = Date.now()
      yield* Effect.forkScoped(Effect.andThen(Effect.sleep("300 millis"), leaver.release(leaverAddress, shard[0]!)))
      const taken = yield* survivor.acquire(survivorAddress, shard)
      assert.deepStrictEqual(taken.map(String), shard.map(String))
      // Well before the grace ends (2 s), where a take that missed the announcement would read again.
      assert.isBelow(Date.now() - start, 1_500)
    }).pipe(Effect.scoped))
})
