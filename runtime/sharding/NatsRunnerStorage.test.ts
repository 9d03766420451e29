/**
 * NatsRunnerStorage against a real NATS server, on short leases: a runner
 * that stops (effect/cluster unregisters it first, then stops the entities
 * of each shard and releases the shard) keeps renewing the leases it still
 * holds, so a slow stop (a loaded machine) hands its shards over instead of
 * letting them lapse; `releaseAll` frees what is left. A survivor's
 * acquisition round answers such a leaver's shards at once as being taken,
 * and the ownership fence opens each of them as soon as the leaver announces
 * its release, one shard at a time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { Runner, RunnerAddress, ShardId } from "effect/cluster"
import { eventually } from "../../test/support/Eventually.ts"
import { natsUrl, testNamespace } from "../../test/support/Nats.ts"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { Metrics } from "../metrics/Metrics.ts"
import { NatsClient } from "./NatsClient.ts"
import * as NatsRunnerStorage from "./NatsRunnerStorage.ts"
import { shardKey } from "./ShardLeaseBook.ts"
import { fenceOf } from "./ShardLeases.ts"

// Short leases, with room for a slow event loop on a busy CI machine (renewals every 0.3 s, 2 s leases).
const timing = { leaseMs: 2_000, marginMs: 400, renewEveryMs: 300 }

/** A runner's storage on its own NATS connection, as each node has. */
const storageOf = (url: string, namespace: string, name: string, leaseTiming: typeof timing & { readonly leaverPollMs?: number } = timing) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.mergeAll(
      NatsClient.layer({ url, namespace, name }),
      ClusterMetrics.layer.pipe(Layer.provide(Metrics.layer))
    ))
    const { handoff, leases, storage } = yield* NatsRunnerStorage.make(leaseTiming).pipe(Effect.provideContext(context))
    // Entity ids are shard ids here: the fence of shard `default:3` is asked about "default:3".
    return { storage, handoff, fence: fenceOf(leases, (shardId) => shardId) }
  })

/** A leaver and a survivor, each on its own connection, registered in a fresh cluster namespace. */
const leaverAndSurvivor = (ports: readonly [number, number], leaseTiming: typeof timing & { readonly leaverPollMs?: number } = timing) =>
  Effect.gen(function*() {
    const url = yield* natsUrl
    const namespace = testNamespace()
    const leaver = yield* storageOf(url, namespace, "leaver", leaseTiming)
    const survivor = yield* storageOf(url, namespace, "survivor", leaseTiming)
    const leaverAddress = RunnerAddress.make("leaver", ports[0])
    const survivorAddress = RunnerAddress.make("survivor", ports[1])
    yield* leaver.storage.register(Runner.make({ address: leaverAddress, groups: ["default"], weight: 1 }), true)
    yield* survivor.storage.register(Runner.make({ address: survivorAddress, groups: ["default"], weight: 1 }), true)
    return { leaver, leaverAddress, survivor, survivorAddress }
  })

/**
 * One registered runner whose storage closes with the test or with `close`,
 * and who holds the leases of `held` in NATS now (undefined: nobody).
 */
const lonelyRunner = (address: RunnerAddress.RunnerAddress, held: ReadonlyArray<ShardId.ShardId>) =>
  Effect.gen(function*() {
    const url = yield* natsUrl
    const context = yield* Layer.build(Layer.mergeAll(
      NatsClient.layer({ url, namespace: testNamespace(), name: "runner-storage-test" }),
      ClusterMetrics.layer.pipe(Layer.provide(Metrics.layer))
    ))
    const nats = Context.get(context, NatsClient)
    const storageScope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(storageScope, Exit.void))
    const { handoff, storage } = yield* NatsRunnerStorage.make(timing).pipe(Effect.provideContext(context), Scope.provide(storageScope))
    const shards = yield* nats.bucket("shards", { maxAgeMs: timing.leaseMs })
    const holder = () =>
      Effect.promise(() => Promise.all(held.map((id) => shards.get(shardKey(id.toString()))))).pipe(
        Effect.map((entries) => entries.map((entry) => entry?.operation === "PUT" ? entry.string() : undefined))
      )
    yield* storage.register(Runner.make({ address, groups: ["default"], weight: 1 }), true)
    return { storage, handoff, holder, close: Scope.close(storageScope, Exit.void) }
  })

/** Milliseconds from `start` until the fence lets this runner act on `shard`. */
const ownedAfter = (fence: ReturnType<typeof fenceOf>, shard: ShardId.ShardId, start: number) =>
  Effect.map(fence.untilOwned(shard.toString()), () => Date.now() - start)

describe("NatsRunnerStorage", () => {
  it.live("a stopping runner renews the leases it still holds until it releases them", () =>
    Effect.gen(function*() {
      const address = RunnerAddress.make("stopping", 4000)
      const held = [ShardId.make("default", 1), ShardId.make("default", 2)]
      const { holder, storage } = yield* lonelyRunner(address, held)
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

  it.live("a release of a shard whose camera is still stopping waits for it; the lease is renewed meanwhile", () =>
    Effect.gen(function*() {
      const address = RunnerAddress.make("draining", 4009)
      const held = [ShardId.make("default", 9), ShardId.make("default", 10)]
      const { close, handoff, holder, storage } = yield* lonelyRunner(address, held)
      yield* storage.acquire(address, held)
      yield* storage.refresh(address, held)
      const cameras = [yield* Scope.make(), yield* Scope.make()]
      yield* handoff.hold(held[0]!.toString()).pipe(Scope.provide(cameras[0]!))
      yield* handoff.hold(held[1]!.toString()).pipe(Scope.provide(cameras[1]!))

      // Sharding moves on while both cameras are still stopping: one shard released, then all.
      yield* storage.release(address, held[0]!)
      yield* storage.releaseAll(address)
      yield* Effect.sleep(1.5 * timing.leaseMs)
      assert.deepStrictEqual(yield* holder(), ["draining:4009", "draining:4009"], "renewed past a lease")

      yield* Scope.close(cameras[0]!, Exit.void)
      assert.deepStrictEqual(yield* holder(), [undefined, "draining:4009"])
      // The storage closing waits for the last camera, then releases its shard.
      const closing = yield* Effect.forkChild(close)
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(yield* holder(), [undefined, "draining:4009"])
      yield* Scope.close(cameras[1]!, Exit.void)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(yield* holder(), [undefined, undefined])
    }).pipe(Effect.scoped))

  it.live("a round answers a leaver's shards at once, and each is owned as soon as its own release comes", () =>
    Effect.gen(function*() {
      const { leaver, leaverAddress, survivor, survivorAddress } = yield* leaverAndSurvivor([4001, 4002])
      const shards = [ShardId.make("default", 3), ShardId.make("default", 4)]
      assert.strictEqual((yield* leaver.storage.acquire(leaverAddress, shards)).length, 2)
      yield* leaver.storage.refresh(leaverAddress, shards)

      // SIGTERM: the leaver leaves the membership, then releases one shard after 0.5 s and the
      // other after 1.3 s (its cameras stop at different speeds on a loaded machine).
      yield* leaver.storage.unregister(leaverAddress)
      const start = Date.now()
      yield* Effect.forkScoped(Effect.gen(function*() {
        yield* Effect.sleep("500 millis")
        yield* leaver.storage.release(leaverAddress, shards[0]!)
        yield* Effect.sleep("800 millis")
        yield* leaver.storage.release(leaverAddress, shards[1]!)
      }))

      // The round answers both at once (their actors start and wait at the fence) ...
      const answered = yield* survivor.storage.acquire(survivorAddress, shards)
      const answeredAt = Date.now() - start
      assert.deepStrictEqual(answered.map(String).sort(), shards.map(String))
      assert.isBelow(answeredAt, 500)
      assert.isFalse(survivor.fence.owns(shards[0]!.toString()))
      // ... and Sharding's refresh keeps them while they are being taken, the create that follows
      // a release included: refreshed over and over until both are owned, it never drops one.
      let refreshes = 0
      const dropped: Array<string> = []
      const refreshing = yield* Effect.forkChild(Effect.gen(function*() {
        while (true) {
          const held = (yield* survivor.storage.refresh(survivorAddress, shards)).map(String)
          refreshes++
          for (const shard of shards) if (!held.includes(shard.toString())) dropped.push(`${shard} at ${Date.now() - start} ms`)
          yield* Effect.yieldNow
        }
      }))

      // Each shard is owned right after its own release, not after the leaver's last one.
      const first = yield* Effect.forkChild(ownedAfter(survivor.fence, shards[0]!, start))
      const second = yield* Effect.forkChild(ownedAfter(survivor.fence, shards[1]!, start))
      const firstAt = yield* Fiber.join(first)
      assert.isAtLeast(firstAt, 500)
      assert.isBelow(firstAt, 1_000, `the first shard was owned ${firstAt} ms after the SIGTERM`)
      const secondAt = yield* Fiber.join(second)
      assert.isAtLeast(secondAt, 1_300)
      assert.isBelow(secondAt, 1_800)
      yield* Fiber.interrupt(refreshing)
      assert.isAbove(refreshes, 100)
      assert.deepStrictEqual(dropped, [])
    }).pipe(Effect.scoped))

  it.live("a shard answered as being taken from a leaver that never releases it is reported lost", () =>
    Effect.gen(function*() {
      const { leaver, leaverAddress, survivor, survivorAddress } = yield* leaverAndSurvivor([4005, 4006])
      const shard = [ShardId.make("default", 6)]
      yield* leaver.storage.acquire(leaverAddress, shard)
      yield* leaver.storage.refresh(leaverAddress, shard)
      // Out of the membership, but its stop hangs: it keeps renewing the lease and never releases it.
      yield* leaver.storage.unregister(leaverAddress)

      assert.deepStrictEqual((yield* survivor.storage.acquire(survivorAddress, shard)).map(String), shard.map(String))
      // The take gives up once the leaver's grace (4 s, a lease) is over: the next refresh drops the shard,
      // and Sharding stops what it started for it. It was never owned here.
      const dropped = yield* eventually(
        "the shard reported lost",
        Effect.map(survivor.storage.refresh(survivorAddress, shard), (held) => held.length === 0 ? true : undefined),
        8_000,
        50
      )
      assert.isTrue(dropped)
      assert.isFalse(survivor.fence.owns(shard[0]!.toString()))
    }).pipe(Effect.scoped))

  it.live("a leaving runner lets a shard go when its last hold ends, before Sharding's own release", () =>
    Effect.gen(function*() {
      const { leaver, leaverAddress, survivor, survivorAddress } = yield* leaverAndSurvivor([4007, 4008], { ...timing, leaverPollMs: 60_000 })
      const shards = [ShardId.make("default", 7), ShardId.make("default", 8)]
      const [held, free] = [shards[0]!.toString(), shards[1]!.toString()]
      yield* leaver.storage.acquire(leaverAddress, shards)
      yield* leaver.storage.refresh(leaverAddress, shards)

      // Two cameras of one shard hold it; a hold that ends while the runner is not leaving changes nothing.
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      yield* leaver.handoff.hold(held).pipe(Scope.provide(first))
      yield* leaver.handoff.hold(held).pipe(Scope.provide(second))
      const idle = yield* Scope.make()
      yield* leaver.handoff.hold(free).pipe(Scope.provide(idle))
      yield* Scope.close(idle, Exit.void)
      assert.isTrue(leaver.fence.owns(free))

      // Leaving: the survivor's round answers both shards at once and waits at the fence.
      yield* leaver.storage.unregister(leaverAddress)
      const start = Date.now()
      assert.strictEqual((yield* survivor.storage.acquire(survivorAddress, shards)).length, 2)
      yield* Scope.close(first, Exit.void)
      assert.isTrue(leaver.fence.owns(held), "one camera of the shard is still stopping")
      yield* Scope.close(second, Exit.void)
      assert.isFalse(leaver.fence.owns(held), "the last hold ended: the lease went")
      // Announced: the survivor owns it at once (its reads are slowed to a minute), the other shard not yet.
      assert.isBelow(yield* ownedAfter(survivor.fence, shards[0]!, start), 1_500)
      assert.isFalse(survivor.fence.owns(free))
      // Sharding's own release after the node's last entity finds it gone and frees the rest.
      yield* leaver.storage.release(leaverAddress, shards[0]!)
      yield* leaver.storage.releaseAll(leaverAddress)
      assert.isBelow(yield* ownedAfter(survivor.fence, shards[1]!, start), 1_500)
    }).pipe(Effect.scoped))

  it.live("a survivor takes a leaver's shard when the release is announced, not at its next read", () =>
    Effect.gen(function*() {
      // No read again within the leaver grace (4 s): only the announcement can end the wait early.
      const { leaver, leaverAddress, survivor, survivorAddress } = yield* leaverAndSurvivor([4003, 4004], { ...timing, leaverPollMs: 60_000 })
      const shard = [ShardId.make("default", 5)]
      assert.strictEqual((yield* leaver.storage.acquire(leaverAddress, shard)).length, 1)
      yield* leaver.storage.refresh(leaverAddress, shard)
      yield* leaver.storage.unregister(leaverAddress)
      const start = Date.now()
      yield* Effect.forkScoped(Effect.andThen(Effect.sleep("300 millis"), leaver.storage.release(leaverAddress, shard[0]!)))
      assert.deepStrictEqual((yield* survivor.storage.acquire(survivorAddress, shard)).map(String), shard.map(String))
      // Well before the grace ends (4 s), where a take that missed the announcement would read again.
      assert.isBelow(yield* ownedAfter(survivor.fence, shard[0]!, start), 1_500)
    }).pipe(Effect.scoped))
})
