/**
 * The first schema: agencies, cameras, users, API tokens and the recording
 * segment index. Identifiers are text (UUIDs or operator-chosen slugs);
 * timestamps are timestamptz (UTC on the wire).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE agencies (
      id text PRIMARY KEY,
      name text NOT NULL UNIQUE,
      max_live_streams integer NOT NULL DEFAULT 64 CHECK (max_live_streams >= 0),
      max_viewers_per_camera integer CHECK (max_viewers_per_camera >= 0),
      max_playback_streams integer CHECK (max_playback_streams >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    INSERT INTO agencies (id, name) VALUES ('default', 'Default agency')`
  yield* sql`
    CREATE TABLE cameras (
      id text PRIMARY KEY,
      agency_id text NOT NULL REFERENCES agencies (id),
      name text NOT NULL,
      url text NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      recording boolean NOT NULL DEFAULT false,
      retention_days integer CHECK (retention_days > 0),
      location_name text,
      latitude double precision CHECK (latitude BETWEEN -90 AND 90),
      longitude double precision CHECK (longitude BETWEEN -180 AND 180),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX cameras_agency_idx ON cameras (agency_id)`
  yield* sql`
    CREATE TABLE users (
      id text PRIMARY KEY,
      agency_id text NOT NULL REFERENCES agencies (id),
      username text NOT NULL UNIQUE,
      password_hash text NOT NULL,
      role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'api_only')),
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE api_tokens (
      id text PRIMARY KEY,
      agency_id text NOT NULL REFERENCES agencies (id),
      name text NOT NULL,
      role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'api_only')),
      token_hash text NOT NULL UNIQUE,
      camera_ids text[],
      rate_limit_per_minute integer CHECK (rate_limit_per_minute > 0),
      expires_at timestamptz,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    )`
  yield* sql`CREATE INDEX api_tokens_agency_idx ON api_tokens (agency_id)`
  // The segment index. camera_id is deliberately not a foreign key: deleting a
  // camera must not delete what it recorded (retention does that).
  yield* sql`
    CREATE TABLE recordings (
      id bigserial PRIMARY KEY,
      camera_id text NOT NULL,
      start_time timestamptz NOT NULL,
      end_time timestamptz NOT NULL,
      duration_ms integer NOT NULL CHECK (duration_ms >= 0),
      bytes bigint NOT NULL CHECK (bytes >= 0),
      object_key text NOT NULL,
      codec text,
      width integer,
      height integer,
      node_id text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (end_time >= start_time),
      UNIQUE (camera_id, start_time)
    )`
  yield* sql`CREATE INDEX recordings_camera_end_idx ON recordings (camera_id, end_time)`
  yield* sql`CREATE INDEX recordings_start_idx ON recordings (start_time)`
})
