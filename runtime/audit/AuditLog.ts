/**
 * The audit log in Postgres (`audit_log`): who (principal kind, id, agency)
 * did what (`camera.create`, `token.revoke`, `recording.start`, `export`, …)
 * to which target, with details. Writing never fails the action it records:
 * a failed write is logged as an error.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { Principal } from "../auth/Principal.ts"

export interface AuditEntry {
  readonly action: string
  readonly targetType: "camera" | "token" | "user" | "recording" | "setting" | "agency"
  readonly targetId: string
  readonly details?: Record<string, unknown> | undefined
  readonly requestId?: string | undefined
}

export class AuditLog extends Context.Service<AuditLog, {
  readonly record: (principal: Principal, entry: AuditEntry) => Effect.Effect<void>
}>()("vms/audit/AuditLog") {
  static readonly layer: Layer.Layer<AuditLog, never, SqlClient.SqlClient> = Layer.effect(
    AuditLog,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return AuditLog.of({
        record: (principal, entry) =>
          sql`INSERT INTO audit_log ${
            sql.insert({
              actor_kind: principal.kind,
              actor_id: principal.subject,
              actor_agency_id: principal.agencyId,
              action: entry.action,
              target_type: entry.targetType,
              target_id: entry.targetId,
              details: JSON.stringify(entry.details ?? {}),
              request_id: entry.requestId ?? null
            })
          }`.pipe(
            Effect.catch((error) =>
              Effect.logError("audit log write failed", error.message).pipe(
                Effect.annotateLogs({ action: entry.action, targetId: entry.targetId })
              )
            ),
            Effect.asVoid
          )
      })
    })
  )
}
