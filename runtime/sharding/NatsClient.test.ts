/**
 * `listKeys` against a real nats-server: it answers the bucket's keys that
 * match the filter, exactly once each, also while every key is rewritten
 * continuously (the case where `KV.keys()` of nats.js 3.4 kept delivering
 * rewrites for seconds); a deleted key stays listed until `get` tells it
 * apart, and a key the bucket's max_age dropped is gone.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { natsUrl, testNamespace } from "../../test/support/Nats.ts"
import { eventually } from "../../test/support/Eventually.ts"
import { listKeys, NatsClient } from "./NatsClient.ts"

const client = Effect.gen(function*() {
  const url = yield* natsUrl
  const context = yield* Layer.build(NatsClient.layer({ url, namespace: testNamespace(), name: "list-keys-test" }))
  return Context.get(context, NatsClient)
})

describe("NatsClient.listKeys", () => {
  it.live("lists each matching key once while the keys are rewritten all the time", () =>
    Effect.gen(function*() {
      const nats = yield* client
      const bucket = yield* nats.bucket("membership", { maxAgeMs: 10_000 })
      const runners = ["runner.a_1", "runner.b_2", "runner.c_3"]
      yield* Effect.promise(() => Promise.all([...runners, "machine.0", "machine.1"].map((key) => bucket.put(key, "x"))))
      // Three writers rewrite every key as fast as NATS takes them, as renewing runners do.
      let writing = true
      const writers = runners.map((key) =>
        (async () => {
          let round = 0
          while (writing) await bucket.put(key, `${round++}`)
        })()
      )
      const listings: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < 100; i++) listings.push(yield* Effect.promise(() => listKeys(bucket, "runner.*")))
      writing = false
      yield* Effect.promise(() => Promise.all(writers))
      for (const listed of listings) assert.deepStrictEqual([...listed].sort(), runners)
      assert.deepStrictEqual((yield* Effect.promise(() => listKeys(bucket, "machine.*"))).sort(), ["machine.0", "machine.1"])
      assert.strictEqual((yield* Effect.promise(() => listKeys(bucket, ">"))).length, 5)
      assert.deepStrictEqual(yield* Effect.promise(() => listKeys(bucket, "nothing.*")), [])

      // A deleted key is listed (its delete marker) and read as a DEL.
      yield* Effect.promise(() => bucket.delete("machine.1"))
      assert.include(yield* Effect.promise(() => listKeys(bucket, "machine.*")), "machine.1")
      assert.strictEqual((yield* Effect.promise(() => bucket.get("machine.1")))?.operation, "DEL")
    }).pipe(Effect.scoped))

  it.live("a key the bucket's max_age dropped is not listed", () =>
    Effect.gen(function*() {
      const nats = yield* client
      const bucket = yield* nats.bucket("short", { maxAgeMs: 1_000 })
      yield* Effect.promise(() => bucket.put("lease.1", "x"))
      assert.deepStrictEqual(yield* Effect.promise(() => listKeys(bucket, "lease.*")), ["lease.1"])
      yield* eventually("the key ages out", Effect.promise(async () =>
        (await listKeys(bucket, "lease.*")).length === 0 ? true : undefined), 5_000, 100)
    }).pipe(Effect.scoped))
})
