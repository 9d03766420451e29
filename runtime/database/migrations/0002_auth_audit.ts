/**
 * Authentication and audit: rotating refresh tokens (stored hashed, one
 * family per login so reuse of a rotated token revokes the family) and the
 * audit log of who changed which camera, token or setting and who exported
 * what.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE refresh_tokens (
      id text PRIMARY KEY,
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      family_id text NOT NULL,
      token_hash text NOT NULL UNIQUE,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      used_at timestamptz,
      revoked_at timestamptz
    )`
  yield* sql`CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id)`
  yield* sql`
    CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      actor_kind text NOT NULL,
      actor_id text NOT NULL,
      actor_agency_id text NOT NULL,
      action text NOT NULL,
      target_type text NOT NULL,
      target_id text NOT NULL,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      request_id text
    )`
  yield* sql`CREATE INDEX audit_log_at_idx ON audit_log (at)`
  yield* sql`CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id)`
})
