/**
 * SIGKILL of a recording node (`vms start` as a real process, 4 s segments):
 * after a restart on the same data dir and database, every segment the
 * killed process left in its spool (the one it was writing included) is
 * indexed exactly once and the spool holds only what the new process is
 * writing.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import * as path from "node:path"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { eventually } from "./support/Eventually.ts"
import { spawnVms } from "./support/NodeProcess.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"
import { tempDir } from "./support/TestNode.ts"

describe("recording across a SIGKILL", () => {
  it.live("every spooled segment of a killed node is indexed exactly once after its restart", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const dataDir = yield* tempDir("crash")
      const databaseUrl = yield* testDatabaseUrl
      const env = {
        VMS_DATA_DIR: dataDir,
        VMS_DATABASE_URL: databaseUrl,
        VMS_HTTP_PORT: "0",
        VMS_RECORDING_SEGMENT_SECONDS: "4",
        VMS_NODE_ID: "crash-node"
      }
      const spool = path.join(dataDir, "spool", "mast")
      const spooled = () => (fs.existsSync(spool) ? fs.readdirSync(spool).filter((f) => f.endsWith(".ts")) : [])
      const rows = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql<{ startMs: number; count: number }>`
          SELECT (extract(epoch FROM start_time) * 1000)::float8 AS "startMs", count(*)::int AS count
          FROM recordings WHERE camera_id = 'mast' GROUP BY start_time ORDER BY start_time`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 1 })), Effect.orDie)

      const ready = (base: string) =>
        eventually(`${base} ready`, Effect.promise(() =>
          fetch(`${base}/health/ready`).then((r) => (r.status === 200 ? true : undefined), () => undefined)), 20_000, 100)
      const first = yield* spawnVms(["start"], env)
      const base = yield* first.httpUrl.pipe(Effect.timeout("20 seconds"))
      yield* ready(base)
      const created = yield* Effect.promise(() =>
        fetch(`${base}/api/v1/cameras`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: "mast", name: "Mast", url: simulator.url(0), recording: true })
        }).then((r) => r.status))
      assert.strictEqual(created, 201)
      yield* eventually("2 rows and a segment being written", Effect.map(rows, (found) => {
        const open = spooled().filter((f) => fs.statSync(path.join(spool, f)).size > 0)
        return found.length >= 2 && open.length > 0 ? true : undefined
      }), 30_000, 100)
      first.child.kill("SIGKILL")
      yield* first.exited
      const left = spooled().map((f) => Number(f.replace(".ts", "")))
      assert.isAtLeast(left.length, 1)

      const second = yield* spawnVms(["start"], env)
      yield* second.httpUrl.pipe(Effect.timeout("20 seconds"))
      const after = yield* eventually("the left-over segments indexed and gone from the spool", Effect.gen(function*() {
        const found = yield* rows
        const indexed = left.every((startMs) => found.some((r) => r.startMs === startMs))
        const stillThere = spooled().some((f) => left.includes(Number(f.replace(".ts", ""))))
        return indexed && !stillThere ? found : undefined
      }), 30_000, 200)
      for (const row of after) assert.strictEqual(row.count, 1)
      // The new process records on: a segment that started after the restart.
      yield* eventually("recording resumed", Effect.map(rows, (found) => found.at(-1)!.startMs > Math.max(...left) ? true : undefined), 20_000, 200)
      second.child.kill("SIGTERM")
      yield* second.exited
    }).pipe(Effect.scoped))
})
