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
      const fiber = yield* Effect.forkChild(whileOwned(fence, "cam", pipeline, Effect.sync(() => void log.push("lost")), 20))
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
})
