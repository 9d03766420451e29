import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Readiness } from "./Readiness.ts"

describe("Readiness", () => {
  it.effect("is not ready while an expected dependency has not registered", () =>
    Effect.gen(function*() {
      const readiness = yield* Readiness
      const before = yield* readiness.report
      assert.isFalse(before.ready)
      assert.deepStrictEqual(before.checks, [{ name: "database", ready: false, reason: "starting" }])
      yield* readiness.register("database", Effect.succeed(undefined))
      const after = yield* readiness.report
      assert.isTrue(after.ready)
    }).pipe(Effect.scoped, Effect.provide(Readiness.layerExpecting(["database"]))))

  it.effect("reports every failing check with its reason and unregisters with the scope", () =>
    Effect.gen(function*() {
      const readiness = yield* Readiness
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* readiness.register("shards", Effect.succeed("no shards assigned"))
          yield* readiness.register("database", Effect.succeed(undefined))
          const report = yield* readiness.report
          assert.isFalse(report.ready)
          assert.deepStrictEqual(report.checks, [
            { name: "database", ready: true },
            { name: "shards", ready: false, reason: "no shards assigned" }
          ])
        })
      )
      const report = yield* readiness.report
      assert.deepStrictEqual(report.checks, [])
      assert.isFalse(report.ready)
    }).pipe(Effect.provide(Readiness.layer)))

  it.effect("turns a failing check into a reason", () =>
    Effect.gen(function*() {
      const readiness = yield* Readiness
      yield* readiness.register("bus", Effect.die("boom"))
      const report = yield* readiness.report
      assert.deepStrictEqual(report.checks, [{ name: "bus", ready: false, reason: "check failed or timed out" }])
    }).pipe(Effect.scoped, Effect.provide(Readiness.layer)))
})
