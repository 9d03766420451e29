import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../test/support/TestDatabase.ts"
import * as Migrations from "../database/Migrations.ts"
import { CameraStore, layer as cameraStoreLayer, type NewCamera } from "./CameraStore.ts"

const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
const store = cameraStoreLayer.pipe(Layer.provideMerge(database))

const camera = (id: string, overrides: Partial<NewCamera> = {}): NewCamera => ({
  id,
  agencyId: "default",
  name: `Camera ${id}`,
  url: `rtsp://admin:secret@10.0.0.1:554/${id}`,
  enabled: true,
  recording: false,
  retentionDays: null,
  locationName: null,
  latitude: null,
  longitude: null,
  ...overrides
})

describe("CameraStore on Postgres", () => {
  it.live("creates, gets, updates and removes a camera", () =>
    Effect.gen(function*() {
      const cameras = yield* CameraStore
      const created = yield* cameras.create(camera("gate-a", { latitude: 52.5, longitude: 13.4, retentionDays: 30 }))
      assert.strictEqual(created.id, "gate-a")
      assert.strictEqual(created.url, "rtsp://admin:secret@10.0.0.1:554/gate-a")
      assert.strictEqual(created.latitude, 52.5)
      assert.strictEqual(created.retentionDays, 30)
      assert.isTrue(DateTime.isDateTime(created.createdAt))

      const fetched = yield* cameras.get("gate-a")
      assert.deepStrictEqual(Option.map(fetched, (record) => record.name), Option.some("Camera gate-a"))
      assert.isTrue(Option.isNone(yield* cameras.get("nope")))

      yield* Effect.sleep("5 millis")
      const updated = yield* cameras.update("gate-a", { name: "Gate A", latitude: null, enabled: false })
      assert.isTrue(Option.isSome(updated))
      const record = Option.getOrThrow(updated)
      assert.strictEqual(record.name, "Gate A")
      assert.isNull(record.latitude)
      assert.strictEqual(record.longitude, 13.4)
      assert.isFalse(record.enabled)
      assert.isTrue(record.updatedAt.epochMilliseconds > created.updatedAt.epochMilliseconds)
      assert.strictEqual(record.createdAt.epochMilliseconds, created.createdAt.epochMilliseconds)

      assert.isTrue(Option.isNone(yield* cameras.update("nope", { name: "x" })))
      assert.isTrue(yield* cameras.remove("gate-a"))
      assert.isFalse(yield* cameras.remove("gate-a"))
      assert.isTrue(Option.isNone(yield* cameras.get("gate-a")))
    }).pipe(Effect.provide(store)))

  it.live("reports a taken id and an unknown agency as typed errors", () =>
    Effect.gen(function*() {
      const cameras = yield* CameraStore
      yield* cameras.create(camera("gate-a"))
      const taken = yield* Effect.flip(cameras.create(camera("gate-a")))
      assert.strictEqual(taken._tag, "CameraAlreadyExists")
      const noAgency = yield* Effect.flip(cameras.create(camera("gate-b", { agencyId: "police" })))
      assert.deepStrictEqual(noAgency._tag === "AgencyNotFound" ? noAgency.agencyId : noAgency._tag, "police")
      const moved = yield* Effect.flip(cameras.update("gate-a", { agencyId: "police" }))
      assert.strictEqual(moved._tag, "AgencyNotFound")
      const page = yield* cameras.list({ limit: 10 })
      assert.deepStrictEqual(page.items.map((record) => [record.id, record.agencyId]), [["gate-a", "default"]])
    }).pipe(Effect.provide(store)))

  it.live("createIfMissing inserts once and leaves an existing camera alone", () =>
    Effect.gen(function*() {
      const cameras = yield* CameraStore
      assert.isTrue(yield* cameras.createIfMissing(camera("demo-1")))
      assert.isFalse(yield* cameras.createIfMissing(camera("demo-1", { name: "changed" })))
      const record = Option.getOrThrow(yield* cameras.get("demo-1"))
      assert.strictEqual(record.name, "Camera demo-1")
    }).pipe(Effect.provide(store)))

  it.live("lists in id order with keyset pages, by agency, and the enabled ids", () =>
    Effect.gen(function*() {
      const cameras = yield* CameraStore
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO agencies (id, name) VALUES ('police', 'Police')`
      for (const id of ["c-05", "c-01", "c-04", "c-02", "c-03"]) {
        yield* cameras.create(camera(id, { enabled: id !== "c-03", agencyId: id === "c-04" ? "police" : "default" }))
      }
      const first = yield* cameras.list({ limit: 2 })
      assert.deepStrictEqual(first.items.map((record) => record.id), ["c-01", "c-02"])
      assert.strictEqual(first.nextCursor, "c-02")
      const second = yield* cameras.list({ limit: 2, cursor: first.nextCursor })
      assert.deepStrictEqual(second.items.map((record) => record.id), ["c-03", "c-04"])
      const third = yield* cameras.list({ limit: 2, cursor: second.nextCursor })
      assert.deepStrictEqual(third.items.map((record) => record.id), ["c-05"])
      assert.isUndefined(third.nextCursor)
      const exact = yield* cameras.list({ limit: 5 })
      assert.strictEqual(exact.items.length, 5)
      assert.isUndefined(exact.nextCursor)

      const police = yield* cameras.list({ agencyId: "police", limit: 10 })
      assert.deepStrictEqual(police.items.map((record) => record.id), ["c-04"])
      const defaults = yield* cameras.list({ agencyId: "default", limit: 2, cursor: "c-02" })
      assert.deepStrictEqual(defaults.items.map((record) => record.id), ["c-03", "c-05"])

      assert.deepStrictEqual(yield* cameras.listEnabledIds, ["c-01", "c-02", "c-04", "c-05"])
    }).pipe(Effect.provide(store)))
})
