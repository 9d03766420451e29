/**
 * The camera registry in Postgres (`cameras` table). The store hands out
 * full records, credentials included: masking is the API's job, and the
 * actor needs the real URL to connect. Validation of what goes in is the
 * API's job too (`CameraModel`); the store maps constraint violations to
 * typed errors and everything else to `CameraStoreFailure`.
 */
import { Context, Effect, Layer, Option, Predicate, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

export class CameraRecord extends Schema.Class<CameraRecord>("CameraRecord")({
  id: Schema.String,
  agencyId: Schema.String,
  name: Schema.String,
  /** The RTSP URL as registered, credentials included. */
  url: Schema.String,
  enabled: Schema.Boolean,
  recording: Schema.Boolean,
  retentionDays: Schema.NullOr(Schema.Number),
  locationName: Schema.NullOr(Schema.String),
  latitude: Schema.NullOr(Schema.Number),
  longitude: Schema.NullOr(Schema.Number),
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
}) {}

/** What a new registration holds: a record without its timestamps. */
export const NewCamera = Schema.Struct({
  id: Schema.String,
  agencyId: Schema.String,
  name: Schema.String,
  url: Schema.String,
  enabled: Schema.Boolean,
  recording: Schema.Boolean,
  retentionDays: Schema.NullOr(Schema.Number),
  locationName: Schema.NullOr(Schema.String),
  latitude: Schema.NullOr(Schema.Number),
  longitude: Schema.NullOr(Schema.Number)
})
export type NewCamera = typeof NewCamera.Type

/** A partial change: every field but the id and the timestamps. */
export type CameraPatch = Partial<Omit<NewCamera, "id">>

export interface CameraPage {
  readonly items: ReadonlyArray<CameraRecord>
  /** Present when more cameras follow; pass it back as `cursor`. */
  readonly nextCursor?: string
}

export class CameraStoreFailure extends Schema.TaggedError<CameraStoreFailure>()("CameraStoreFailure", {
  message: Schema.String
}) {}

export class CameraAlreadyExists extends Schema.TaggedError<CameraAlreadyExists>()("CameraAlreadyExists", {
  cameraId: Schema.String
}) {}

export class AgencyNotFound extends Schema.TaggedError<AgencyNotFound>()("AgencyNotFound", {
  agencyId: Schema.String
}) {}

export class CameraStore extends Context.Service<CameraStore, {
  readonly get: (id: string) => Effect.Effect<Option.Option<CameraRecord>, CameraStoreFailure>
  /** Ids of every enabled camera, for the fleet keeper. */
  readonly listEnabledIds: Effect.Effect<ReadonlyArray<string>, CameraStoreFailure>
  /** One page in id order; `cursor` is a previous page's `nextCursor`. */
  readonly list: (options: {
    readonly agencyId?: string | undefined
    readonly cursor?: string | undefined
    readonly limit: number
  }) => Effect.Effect<CameraPage, CameraStoreFailure>
  readonly create: (
    camera: NewCamera
  ) => Effect.Effect<CameraRecord, CameraAlreadyExists | AgencyNotFound | CameraStoreFailure>
  /** Inserts unless the id is taken; answers whether it inserted. For `vms start --demo`. */
  readonly createIfMissing: (camera: NewCamera) => Effect.Effect<boolean, AgencyNotFound | CameraStoreFailure>
  /** Applies the fields present in `patch` and bumps `updated_at`; none when the id is unknown. */
  readonly update: (
    id: string,
    patch: CameraPatch
  ) => Effect.Effect<Option.Option<CameraRecord>, AgencyNotFound | CameraStoreFailure>
  /** Answers whether a camera was deleted. */
  readonly remove: (id: string) => Effect.Effect<boolean, CameraStoreFailure>
}>()("vms/CameraStore") {}

// ---------------------------------------------------------------------------
// Postgres

/** A `cameras` row as selected below (aliased to camelCase; timestamptz arrive as Date). */
const CameraRow = Schema.Struct({
  ...NewCamera.fields,
  createdAt: Schema.DateTimeUtcFromDate,
  updatedAt: Schema.DateTimeUtcFromDate
})
const decodeRows = Schema.decodeUnknownEffect(Schema.Array(CameraRow))

const columns: { readonly [K in keyof CameraPatch]-?: string } = {
  agencyId: "agency_id",
  name: "name",
  url: "url",
  enabled: "enabled",
  recording: "recording",
  retentionDays: "retention_days",
  locationName: "location_name",
  latitude: "latitude",
  longitude: "longitude"
}

const foreignKeyViolation = "23503"

const sqlState = (error: SqlError.SqlError): string | undefined => {
  const cause = error.reason.cause
  return Predicate.hasProperty(cause, "code") && typeof cause.code === "string" ? cause.code : undefined
}

const failure = (operation: string) => (error: SqlError.SqlError | Schema.SchemaError) =>
  new CameraStoreFailure({ message: `${operation}: ${error.message}` })

export const layer: Layer.Layer<CameraStore, never, SqlClient.SqlClient> = Layer.effect(
  CameraStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const returning = sql.literal(`
      id, agency_id AS "agencyId", name, url, enabled, recording,
      retention_days AS "retentionDays", location_name AS "locationName",
      latitude, longitude, created_at AS "createdAt", updated_at AS "updatedAt"`)

    const toRecords = (operation: string, rows: ReadonlyArray<unknown>) =>
      decodeRows(rows).pipe(
        Effect.map((decoded) => decoded.map((row) => new CameraRecord(row))),
        Effect.mapError(failure(operation))
      )

    const firstRecord = (operation: string, rows: ReadonlyArray<unknown>) =>
      Effect.map(toRecords(operation, rows), (records) => Option.fromNullishOr(records[0]))

    /** On insert or update a foreign-key violation can only be the agency. */
    const writeFailure = (operation: string, agencyId: string | undefined) => (error: SqlError.SqlError) =>
      agencyId !== undefined && sqlState(error) === foreignKeyViolation
        ? new AgencyNotFound({ agencyId })
        : failure(operation)(error)

    const insertRow = (camera: NewCamera) => ({
      id: camera.id,
      agency_id: camera.agencyId,
      name: camera.name,
      url: camera.url,
      enabled: camera.enabled,
      recording: camera.recording,
      retention_days: camera.retentionDays,
      location_name: camera.locationName,
      latitude: camera.latitude,
      longitude: camera.longitude
    })

    const get = Effect.fn("CameraStore.get")(function*(id: string) {
      const rows = yield* sql`SELECT ${returning} FROM cameras WHERE id = ${id}`.pipe(Effect.mapError(failure("get")))
      return yield* firstRecord("get", rows)
    })

    const listEnabledIds = sql<{ readonly id: string }>`SELECT id FROM cameras WHERE enabled ORDER BY id`.pipe(
      Effect.map((rows) => rows.map((row) => row.id)),
      Effect.mapError(failure("listEnabledIds")),
      Effect.withSpan("CameraStore.listEnabledIds")
    )

    const list = Effect.fn("CameraStore.list")(function*(options: {
      readonly agencyId?: string | undefined
      readonly cursor?: string | undefined
      readonly limit: number
    }) {
      const conditions = [
        ...(options.agencyId === undefined ? [] : [sql`agency_id = ${options.agencyId}`]),
        ...(options.cursor === undefined ? [] : [sql`id > ${options.cursor}`])
      ]
      const where = conditions.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(conditions)}`
      // One row more than asked tells whether another page follows.
      const rows = yield* sql`SELECT ${returning} FROM cameras ${where} ORDER BY id LIMIT ${options.limit + 1}`.pipe(
        Effect.mapError(failure("list"))
      )
      const records = yield* toRecords("list", rows)
      if (records.length <= options.limit) return { items: records }
      const items = records.slice(0, options.limit)
      return { items, nextCursor: items[items.length - 1].id }
    })

    const create = Effect.fn("CameraStore.create")(function*(camera: NewCamera) {
      const rows = yield* sql`INSERT INTO cameras ${sql.insert(insertRow(camera))} RETURNING ${returning}`.pipe(
        Effect.mapError((error) =>
          error.reason._tag === "UniqueViolation"
            ? new CameraAlreadyExists({ cameraId: camera.id })
            : writeFailure("create", camera.agencyId)(error)
        )
      )
      const record = yield* firstRecord("create", rows)
      if (Option.isNone(record)) return yield* new CameraStoreFailure({ message: "create: INSERT returned no row" })
      return record.value
    })

    const createIfMissing = Effect.fn("CameraStore.createIfMissing")(function*(camera: NewCamera) {
      const rows = yield* sql`
        INSERT INTO cameras ${sql.insert(insertRow(camera))} ON CONFLICT (id) DO NOTHING RETURNING id`.pipe(
        Effect.mapError(writeFailure("createIfMissing", camera.agencyId))
      )
      return rows.length > 0
    })

    const update = Effect.fn("CameraStore.update")(function*(id: string, patch: CameraPatch) {
      const changes: Record<string, unknown> = {}
      for (const [field, column] of Object.entries(columns)) {
        const value = patch[field as keyof CameraPatch]
        if (value !== undefined) changes[column] = value
      }
      const assignments = Object.keys(changes).length === 0
        ? sql`updated_at = now()`
        : sql`${sql.update(changes)}, updated_at = now()`
      const rows = yield* sql`UPDATE cameras SET ${assignments} WHERE id = ${id} RETURNING ${returning}`.pipe(
        Effect.mapError(writeFailure("update", patch.agencyId))
      )
      return yield* firstRecord("update", rows)
    })

    const remove = Effect.fn("CameraStore.remove")(function*(id: string) {
      const rows = yield* sql`DELETE FROM cameras WHERE id = ${id} RETURNING id`.pipe(Effect.mapError(failure("remove")))
      return rows.length > 0
    })

    return CameraStore.of({ get, listEnabledIds, list, create, createIfMissing, update, remove })
  })
)
