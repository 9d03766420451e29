/**
 * The node's Postgres connection: `VMS_DATABASE_URL` when set, otherwise an
 * embedded Postgres under the data dir. Building the layer connects, applies
 * migrations and registers the `database` readiness check; closing it closes
 * the pool and stops the embedded server.
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"
import { Readiness } from "../health/Readiness.ts"
import * as EmbeddedPostgres from "./EmbeddedPostgres.ts"
import * as Migrations from "./Migrations.ts"

export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  message: Schema.String
}) {}

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** Where the database is: the configured URL, or an embedded server started for the node's life. */
const connectionUrl = Effect.gen(function*() {
  const config = yield* NodeConfig
  if (Option.isSome(config.databaseUrl)) return config.databaseUrl.value
  const dataDir = yield* DataDir
  const context = yield* Effect.context<never>()
  const log = (line: string) => {
    if (line.length > 0) Effect.runForkWith(context)(Effect.logDebug(line).pipe(Effect.annotateLogs({ component: "embedded-postgres" })))
  }
  yield* Effect.logInfo("starting embedded Postgres").pipe(Effect.annotateLogs({ dataDir: dataDir.path }))
  const notice = (line: string) =>
    Effect.runForkWith(context)(Effect.logWarning(line).pipe(Effect.annotateLogs({ component: "embedded-postgres" })))
  const server = yield* EmbeddedPostgres.start({ dataDir: dataDir.path, onLog: log, onNotice: notice })
  yield* Effect.logInfo("embedded Postgres is up").pipe(Effect.annotateLogs({ port: server.port, directory: server.directory }))
  return server.url
})

const clientLayer = Layer.unwrap(
  Effect.gen(function*() {
    const url = yield* connectionUrl.pipe(
      Effect.mapError((error) => new DatabaseUnavailable({ message: `embedded Postgres: ${error.step}: ${error.message}` }))
    )
    return PgClient.layer({
      url,
      maxConnections: 20,
      connectTimeout: "5 seconds",
      applicationName: "vms"
    })
  })
)

/** Connects, migrates, and keeps the `database` readiness check registered. */
const migrated = Layer.effectDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrations.run
    const readiness = yield* Readiness
    yield* readiness.register(
      "database",
      sql`SELECT 1`.pipe(Effect.as(undefined), Effect.catchCause(() => Effect.succeed("database not reachable")))
    )
  })
)

/** PgClient + SqlClient, migrated, with the `database` readiness check. */
export const layer: Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient,
  DatabaseUnavailable,
  NodeConfig | DataDir | Readiness
> = migrated.pipe(
  Layer.provideMerge(clientLayer),
  Layer.catchCause((cause) => {
    const error = Cause.squash(cause)
    // An interrupt (Ctrl-C while starting) stays an interrupt, so the node still exits 0.
    const failure = Cause.hasInterruptsOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>)
      : Effect.fail(error instanceof DatabaseUnavailable ? error : new DatabaseUnavailable({ message: describe(error) }))
    return Layer.effectContext(failure) as Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseUnavailable>
  })
)
