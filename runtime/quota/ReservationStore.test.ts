/**
 * The reservation store's contract, proved against both stores: the
 * in-process one (embedded mode) and Redis with its Lua scripts (cluster
 * mode, a real server). Limits hold under contention, renewals and repeats
 * never count twice, releases free a slot at once, and expiry frees it by
 * itself.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, type Scope } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { eventually } from "../../test/support/Eventually.ts"
import { redisUrl } from "../../test/support/Redis.ts"
import * as RedisReservationStore from "./RedisReservationStore.ts"
import { makeMemory, type ReservationRequest, type ReservationStoreShape } from "./ReservationStore.ts"

/** One admission, through the batch operation. */
const admitOne = (store: ReservationStoreShape, request: ReservationRequest) =>
  Effect.map(store.admitMany([request]), (answers) => answers[0]!)

const stores: ReadonlyArray<readonly [string, Effect.Effect<ReservationStoreShape, unknown, Scope.Scope>]> = [
  ["in process", Effect.sync(() => makeMemory())],
  ["Redis", Effect.gen(function*() {
    const redis = yield* RedisReservationStore.connect(yield* redisUrl)
    return RedisReservationStore.make(redis, `t${randomBytes(5).toString("hex")}:`)
  })]
]

const request = (overrides: Partial<ReservationRequest> = {}): ReservationRequest => ({
  id: randomUUID(),
  agencyId: "police",
  cameraId: "gate",
  holder: "user:alice",
  kind: "live",
  limit: 5,
  perCameraLimit: null,
  ttlMs: 30_000,
  ...overrides
})

describe.each(stores)("reservation store (%s)", (_name, makeStore) => {
  it.live("admits up to the agency's limit, then refuses with the limit and what is in use", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      for (let i = 1; i <= 3; i++) {
        const granted = yield* admitOne(store, request({ limit: 3 }))
        assert.strictEqual(granted._tag, "Granted")
        assert.strictEqual(granted._tag === "Granted" && granted.inUse, i)
      }
      assert.deepStrictEqual(yield* admitOne(store, request({ limit: 3 })), { _tag: "Refused", scope: "agency", limit: 3, inUse: 3 })
      assert.strictEqual(yield* store.usage("police", "live"), 3)
      // Other agencies and the other kind count apart.
      assert.strictEqual((yield* admitOne(store, request({ limit: 3, agencyId: "transit" })))._tag, "Granted")
      assert.strictEqual((yield* admitOne(store, request({ limit: 3, kind: "playback" })))._tag, "Granted")
      assert.strictEqual(yield* store.usage("police", "live"), 3)
      assert.strictEqual(yield* store.usage("police", "playback"), 1)
      // No limit: never refused.
      for (let i = 0; i < 10; i++) assert.strictEqual((yield* admitOne(store, request({ kind: "playback", limit: null })))._tag, "Granted")
    }).pipe(Effect.scoped))

  it.live("refuses a camera at its viewers-per-camera limit while the agency has room", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      for (let i = 0; i < 2; i++) assert.strictEqual((yield* admitOne(store, request({ perCameraLimit: 2 })))._tag, "Granted")
      assert.deepStrictEqual(yield* admitOne(store, request({ perCameraLimit: 2 })), { _tag: "Refused", scope: "camera", limit: 2, inUse: 2 })
      assert.strictEqual((yield* admitOne(store, request({ perCameraLimit: 2, cameraId: "dock" })))._tag, "Granted")
    }).pipe(Effect.scoped))

  it.live("admitting a held reservation again renews it and never counts it twice", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      const held = request({ limit: 1 })
      const first = yield* admitOne(store, held)
      const again = yield* admitOne(store, held)
      assert.strictEqual(first._tag, "Granted")
      assert.strictEqual(again._tag, "Granted")
      assert.strictEqual(yield* store.usage("police", "live"), 1)
      assert.strictEqual((yield* admitOne(store, request({ limit: 1 })))._tag, "Refused")
    }).pipe(Effect.scoped))

  it.live("renew extends a live reservation and knows its holder; gone ones are not renewed", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      const held = request({ ttlMs: 5_000 })
      const granted = yield* admitOne(store, held)
      assert.strictEqual(granted._tag, "Granted")
      const renewed = Option.getOrThrow(yield* store.renew(held.id, 60_000))
      assert.deepInclude(renewed, { id: held.id, agencyId: "police", cameraId: "gate", holder: "user:alice", kind: "live" })
      assert.isAbove(renewed.expiresAtMs, (granted as { expiresAtMs: number }).expiresAtMs + 50_000)
      assert.deepStrictEqual(Option.getOrThrow(yield* store.get(held.id)), renewed)
      assert.isTrue(Option.isNone(yield* store.renew(randomUUID(), 60_000)))
    }).pipe(Effect.scoped))

  it.live("release frees the slot at once; a second release finds nothing", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      const held = request({ limit: 1, perCameraLimit: 1 })
      assert.strictEqual((yield* admitOne(store, held))._tag, "Granted")
      assert.strictEqual((yield* admitOne(store, request({ limit: 1 })))._tag, "Refused")
      assert.strictEqual(Option.getOrThrow(yield* store.release(held.id)).holder, "user:alice")
      assert.isTrue(Option.isNone(yield* store.release(held.id)))
      assert.isTrue(Option.isNone(yield* store.get(held.id)))
      assert.isTrue(Option.isNone(yield* store.renew(held.id, 30_000)))
      assert.strictEqual((yield* admitOne(store, request({ limit: 1, perCameraLimit: 1 })))._tag, "Granted")
    }).pipe(Effect.scoped))

  it.live("a reservation nobody renews expires by itself and its slot goes to the next caller", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      const held = request({ limit: 1, ttlMs: 300 })
      assert.strictEqual((yield* admitOne(store, held))._tag, "Granted")
      assert.strictEqual((yield* admitOne(store, request({ limit: 1 })))._tag, "Refused")
      const next = request({ limit: 1 })
      yield* eventually("the expired slot is granted", Effect.map(admitOne(store, next), (a) => a._tag === "Granted" ? a : undefined), 5_000, 50)
      assert.isTrue(Option.isNone(yield* store.get(held.id)))
      assert.isTrue(Option.isNone(yield* store.renew(held.id, 30_000)))
      assert.strictEqual(yield* store.usage("police", "live"), 1)
    }).pipe(Effect.scoped))

  it.live("a batch is admitted in order as one step", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      const repeated = request({ limit: 3 })
      const batch = [repeated, repeated, ...Array.from({ length: 5 }, () => request({ limit: 3 }))]
      const answers = yield* store.admitMany(batch)
      assert.deepStrictEqual(answers.map((a) => a._tag), ["Granted", "Granted", "Granted", "Granted", "Refused", "Refused", "Refused"])
      assert.deepStrictEqual(answers.map((a) => a.inUse), [1, 1, 2, 3, 3, 3, 3])
      assert.deepStrictEqual(yield* store.admitMany([]), [])
    }).pipe(Effect.scoped))

  it.live("under contention exactly the limit is admitted", () =>
    Effect.gen(function*() {
      const store = yield* makeStore
      const answers = yield* Effect.forEach(
        Array.from({ length: 200 }, () => request({ limit: 7 })),
        (r) => admitOne(store, r),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(answers.filter((a) => a._tag === "Granted").length, 7)
      assert.strictEqual(yield* store.usage("police", "live"), 7)
    }).pipe(Effect.scoped))
})
