import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { eventually } from "../../test/support/Eventually.ts"
import { fenceOf, makeLeaseTable, monotonicNow, whileOwned } from "./ShardLeases.ts"

describe("ownership fence", () => {
  it.live("a pipeline runs while the lease holds, stops the moment it lapses, and runs again once renewed", () =>
    Effect.gen(function*() {
      const table = makeLeaseTable()
      const fence = fenceOf(table, (entityId) => `default:${entityId}`, 20)
      const renew = (forMs: number) => Effect.sync(() => void table.deadlines.set("default:cam", monotonicNow() + forMs))
      const log: Array<string> = []
      let running = 0
      const pipeline = Effect.acquireRelease(
        Effect.sync(() => (running++, log.push("start"))),
        () => Effect.sync(() => (running--, log.push("stop")))
      ).pipe(Effect.andThen(Effect.never), Effect.scoped)

      // Not owned yet: nothing runs.
      const fiber = yield* Effect.forkChild(whileOwned(fence, "cam", pipeline, Effect.sync(() => void log.push("lost"))))
      yield* Effect.sleep(100)
      assert.deepStrictEqual(log, [])

      yield* renew(150)
      yield* eventually("started", Effect.sync(() => running === 1 ? true : undefined), 2_000, 10)
      // The lease lapses (no renewal in time): stopped, and it waits.
      yield* eventually("stopped on the lapse", Effect.sync(() => log.includes("lost") ? true : undefined), 2_000, 10)
      assert.strictEqual(running, 0)
      assert.deepStrictEqual(log, ["start", "stop", "lost"])
      yield* Effect.sleep(100)
      assert.strictEqual(running, 0)

      // Renewed after all (the lapse was only local): it runs again.
      yield* renew(60_000)
      yield* eventually("started again", Effect.sync(() => running === 1 ? true : undefined), 2_000, 10)
      assert.deepStrictEqual(log, ["start", "stop", "lost", "start"])

      // The entity's end (another node took the shard) stops it for good.
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(running, 0)
    }))

  it.live("a wait for ownership ends the moment the lease is taken, not at the next poll", () =>
    Effect.gen(function*() {
      const table = makeLeaseTable()
      // A poll of a minute: only the signal of the take can end the wait within the test.
      const fence = fenceOf(table, (entityId) => `default:${entityId}`, 60_000)
      const waiting = yield* Effect.forkChild(fence.untilOwned("cam"))
      yield* Effect.sleep(50)
      assert.isUndefined(waiting.pollUnsafe())
      const takenAt = Date.now()
      table.deadlines.set("default:cam", monotonicNow() + 60_000)
      table.taken.fire()
      yield* Fiber.join(waiting)
      assert.isBelow(Date.now() - takenAt, 1_000)
      // Owned already: no wait at all.
      yield* fence.untilOwned("cam")
    }))
})
