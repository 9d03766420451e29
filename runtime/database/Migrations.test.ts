import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../test/support/TestDatabase.ts"
import * as Migrations from "./Migrations.ts"

const migrationCount = 2

describe("Migrations", () => {
  it.live("creates the first schema, and a re-run is a no-op", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const first = yield* Migrations.run
      assert.deepStrictEqual(first.map(([id, name]) => `${id}_${name}`), ["1_initial", "2_auth_audit"])
      const tables = yield* sql<{ tableName: string }>`
        SELECT table_name AS "tableName" FROM information_schema.tables
        WHERE table_schema = 'public' ORDER BY table_name`
      const names = tables.map((t) => t.tableName)
      for (const table of ["agencies", "api_tokens", "audit_log", "cameras", "recordings", "refresh_tokens", "users"]) assert.include(names, table)
      const again = yield* Migrations.run
      assert.deepStrictEqual(again, [])
      const agencies = yield* sql<{ id: string }>`SELECT id FROM agencies`
      assert.deepStrictEqual(agencies.map((a) => a.id), ["default"])
    }).pipe(Effect.provide(TestDatabase.layer)))

  it.live("concurrent runs apply each migration once", () =>
    Effect.gen(function*() {
      const outcome = (run: typeof Migrations.run) =>
        run.pipe(
          Effect.map((applied) => applied.length),
          Effect.catchTag("MigrationError", (error) => Effect.succeed(error.kind))
        )
      const results = yield* Effect.all([outcome(Migrations.run), outcome(Migrations.run), outcome(Migrations.run)], {
        concurrency: "unbounded"
      })
      // Each run either applied the migrations, found them applied, or saw them being applied.
      for (const result of results) assert.include([0, migrationCount, "Locked"], result)
      assert.strictEqual(results.filter((r) => r === migrationCount).length, 1)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ count: string }>`SELECT count(*)::text AS count FROM vms_migrations`
      assert.strictEqual(rows[0]?.count, String(migrationCount))
    }).pipe(Effect.provide(TestDatabase.layer)))

  it.live("the recording index is unique on camera and start", () =>
    Effect.gen(function*() {
      yield* Migrations.run
      const sql = yield* SqlClient.SqlClient
      const insert = sql`
        INSERT INTO recordings (camera_id, start_time, end_time, duration_ms, bytes, object_key, node_id)
        VALUES ('cam-1', '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 60000, 1000, 'k', 'n')`
      yield* insert
      const duplicate = yield* Effect.flip(insert)
      assert.strictEqual(duplicate._tag, "SqlError")
      assert.strictEqual(duplicate._tag === "SqlError" ? duplicate.reason._tag : undefined, "UniqueViolation")
    }).pipe(Effect.provide(TestDatabase.layer)))
})
