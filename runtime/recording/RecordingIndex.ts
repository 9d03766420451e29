/**
 * The recording index in Postgres (`recordings` table): one row per stored
 * segment. Inserting is idempotent (unique on camera + start: a segment
 * processed again after a crash adds nothing), listing answers the
 * segments that overlap a range in start order, and retention reads the
 * oldest rows and deletes them one by one. Times are epoch milliseconds.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

export const RecordedSegment = Schema.Struct({
  id: Schema.String,
  cameraId: Schema.String,
  startMs: Schema.Number,
  endMs: Schema.Number,
  durationMs: Schema.Number,
  bytes: Schema.Number,
  objectKey: Schema.String,
  codec: Schema.NullOr(Schema.String),
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  nodeId: Schema.String
})
export type RecordedSegment = typeof RecordedSegment.Type

export type NewSegment = Omit<RecordedSegment, "id">

export class RecordingIndexError extends Schema.TaggedError<RecordingIndexError>()("RecordingIndexError", {
  message: Schema.String
}) {}

export class RecordingIndex extends Context.Service<RecordingIndex, {
  /** Adds the segment's row; answers false when a row for its camera and start exists already. */
  readonly insert: (segment: NewSegment) => Effect.Effect<boolean, RecordingIndexError>
  /** Segments of the camera overlapping `[fromMs, toMs)`, by start, at most `limit`, starting after `afterStartMs`. */
  readonly list: (
    cameraId: string,
    fromMs: number,
    toMs: number,
    limit: number,
    afterStartMs?: number | undefined
  ) => Effect.Effect<ReadonlyArray<RecordedSegment>, RecordingIndexError>
  readonly get: (cameraId: string, id: string) => Effect.Effect<RecordedSegment | undefined, RecordingIndexError>
  /** Segments that ended before their camera's retention (or `defaultDays`) allows, oldest first. */
  readonly expired: (
    nowMs: number,
    defaultDays: number | undefined,
    limit: number
  ) => Effect.Effect<ReadonlyArray<RecordedSegment>, RecordingIndexError>
  readonly totalBytes: Effect.Effect<number, RecordingIndexError>
  /** The oldest segments of all cameras. */
  readonly oldest: (limit: number) => Effect.Effect<ReadonlyArray<RecordedSegment>, RecordingIndexError>
  /** Deletes the row; answers whether it was there. */
  readonly remove: (id: string) => Effect.Effect<boolean, RecordingIndexError>
  /** Ids of the cameras that are enabled and recording, for the recording keeper. */
  readonly recordingCameraIds: Effect.Effect<ReadonlyArray<string>, RecordingIndexError>
}>()("vms/runtime/recording/RecordingIndex") {}

const decodeRows = Schema.decodeUnknownEffect(Schema.Array(RecordedSegment))

const failure = (operation: string) => (error: SqlError.SqlError | Schema.SchemaError) =>
  new RecordingIndexError({ message: `${operation}: ${error.message}` })

export const layer: Layer.Layer<RecordingIndex, never, SqlClient.SqlClient> = Layer.effect(
  RecordingIndex,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const selected = sql.literal(`
      id::text AS id, camera_id AS "cameraId",
      (extract(epoch FROM start_time) * 1000)::float8 AS "startMs",
      (extract(epoch FROM end_time) * 1000)::float8 AS "endMs",
      duration_ms AS "durationMs", bytes::float8 AS bytes, object_key AS "objectKey",
      codec, width, height, node_id AS "nodeId"`)

    const rows = (operation: string) => (query: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>) =>
      query.pipe(Effect.flatMap(decodeRows), Effect.mapError(failure(operation)), Effect.withSpan(`RecordingIndex.${operation}`))

    const toTimestamp = (ms: number) => new Date(ms)

    return RecordingIndex.of({
      insert: (segment) =>
        sql<{ readonly id: string }>`
          INSERT INTO recordings (camera_id, start_time, end_time, duration_ms, bytes, object_key, codec, width, height, node_id)
          VALUES (${segment.cameraId}, ${toTimestamp(segment.startMs)}, ${toTimestamp(segment.endMs)},
            ${Math.round(segment.durationMs)}, ${segment.bytes}, ${segment.objectKey}, ${segment.codec},
            ${segment.width}, ${segment.height}, ${segment.nodeId})
          ON CONFLICT (camera_id, start_time) DO NOTHING
          RETURNING id::text AS id`.pipe(
          Effect.map((inserted) => inserted.length > 0),
          Effect.mapError(failure("insert")),
          Effect.withSpan("RecordingIndex.insert")
        ),
      list: (cameraId, fromMs, toMs, limit, afterStartMs) =>
        sql`
          SELECT ${selected} FROM recordings
          WHERE camera_id = ${cameraId} AND start_time < ${toTimestamp(toMs)} AND end_time > ${toTimestamp(fromMs)}
            AND start_time > ${toTimestamp(afterStartMs ?? 0)}
          ORDER BY start_time LIMIT ${limit}`.pipe(rows("list")),
      get: (cameraId, id) =>
        sql`SELECT ${selected} FROM recordings WHERE camera_id = ${cameraId} AND id = ${id}::bigint`.pipe(
          rows("get"),
          Effect.map((found) => found[0])
        ),
      expired: (nowMs, defaultDays, limit) =>
        sql`
          SELECT ${selected} FROM recordings r
          WHERE r.end_time < ${toTimestamp(nowMs)}::timestamptz - make_interval(days => COALESCE(
            (SELECT c.retention_days FROM cameras c WHERE c.id = r.camera_id), ${defaultDays ?? null}::integer))
          ORDER BY r.start_time LIMIT ${limit}`.pipe(rows("expired")),
      totalBytes: sql<{ readonly total: number }>`SELECT COALESCE(sum(bytes), 0)::float8 AS total FROM recordings`.pipe(
        Effect.map((result) => result[0]?.total ?? 0),
        Effect.mapError(failure("totalBytes"))
      ),
      oldest: (limit) => sql`SELECT ${selected} FROM recordings ORDER BY start_time LIMIT ${limit}`.pipe(rows("oldest")),
      remove: (id) =>
        sql`DELETE FROM recordings WHERE id = ${id}::bigint RETURNING id`.pipe(
          Effect.map((deleted) => deleted.length > 0),
          Effect.mapError(failure("remove"))
        ),
      recordingCameraIds: sql<{ readonly id: string }>`SELECT id FROM cameras WHERE enabled AND recording ORDER BY id`.pipe(
        Effect.map((found) => found.map((row) => row.id)),
        Effect.mapError(failure("recordingCameraIds"))
      )
    })
  })
)
