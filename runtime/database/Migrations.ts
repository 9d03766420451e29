/**
 * Schema migrations (effect/sql's migrator on Postgres). Run at node start and
 * by `vms migrate`; concurrent runs serialise on the migrations table lock and
 * a re-run is a no-op. Each migration is a module in `./migrations`.
 */
import { NodeServices } from "@effect/platform-node"
import { PgMigrator } from "@effect/sql-pg"
import { Effect } from "effect"
import initial from "./migrations/0001_initial.ts"
import authAudit from "./migrations/0002_auth_audit.ts"

export const migrationsTable = "vms_migrations"

/** Applies every pending migration; answers the ones applied now. */
export const run = PgMigrator.run({
  loader: PgMigrator.fromRecord({
    "0001_initial": initial,
    "0002_auth_audit": authAudit
  }),
  table: migrationsTable
}).pipe(
  Effect.provide(NodeServices.layer),
  Effect.tap((applied) =>
    applied.length === 0
      ? Effect.logDebug("schema is up to date")
      : Effect.logInfo("applied migrations").pipe(Effect.annotateLogs({ migrations: applied.map(([id, name]) => `${id}_${name}`) }))
  ),
  Effect.withSpan("Migrations.run")
)
