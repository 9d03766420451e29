import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SpawnPacer } from "./SpawnPacer.ts"

describe("spawn pacer", () => {
  it.live("gives concurrent callers slots one interval apart, in order", () =>
    Effect.gen(function*() {
      const pacer = yield* SpawnPacer
      const started = Date.now()
      const times = yield* Effect.forEach(
        [0, 1, 2, 3, 4],
        () => Effect.map(pacer.pace, () => Date.now() - started),
        { concurrency: "unbounded" }
      )
      const sorted = [...times].sort((a, b) => a - b)
      for (let i = 1; i < sorted.length; i++) assert.isAtLeast(sorted[i]! - sorted[i - 1]!, 45)
      assert.isAtLeast(sorted.at(-1)!, 4 * 50 - 5)
    }).pipe(Effect.provide(SpawnPacer.make("50 millis"))))
})
