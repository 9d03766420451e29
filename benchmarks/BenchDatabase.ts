/**
 * A throwaway Postgres database for a benchmark's node: created on the local
 * server (127.0.0.1:5432, user postgres) when one answers, dropped when the
 * scope closes. Without a local server the answer is `undefined` and the node
 * falls back to its embedded Postgres.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"
import { reachable } from "../runtime/net/Reachable.ts"

export class BenchDatabaseError extends Schema.TaggedError<BenchDatabaseError>()("BenchDatabaseError", {
  reason: Schema.String
}) {}

const localServer = { host: "127.0.0.1", port: 5432, adminUrl: "postgres://postgres@127.0.0.1:5432/postgres" }

const runAdmin = (statement: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(statement)
  }).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(localServer.adminUrl), maxConnections: 1 })),
    Effect.scoped,
    Effect.mapError((cause) => new BenchDatabaseError({ reason: `${statement}: ${String(cause)}` }))
  )

/** The URL of a fresh database `vms_bench_<random>` for the scope, or `undefined` for embedded Postgres. */
export const benchDatabaseUrl = Effect.gen(function*() {
  if (!(yield* reachable(localServer.host, localServer.port))) return undefined
  const database = `vms_bench_${randomBytes(6).toString("hex")}`
  yield* Effect.acquireRelease(
    runAdmin(`CREATE DATABASE ${database}`),
    () => runAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).pipe(Effect.ignore)
  )
  const url = new URL(localServer.adminUrl)
  url.pathname = `/${database}`
  return url.toString()
})
