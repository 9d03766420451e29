/**
 * Agencies and their stream limits in Postgres (`agencies` table): the
 * concurrent live streams an agency may watch, optionally viewers per
 * camera, and optionally playback and export streams (counted apart).
 * Validation is the API's job; the store maps constraint violations to
 * typed errors and everything else to `AgencyStoreFailure`.
 */
import { Context, Effect, Layer, Option, Predicate, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { AgencyLimits } from "../quota/QuotaModel.ts"

export class AgencyRecord extends Schema.Class<AgencyRecord>("AgencyRecord")({
  id: Schema.String,
  name: Schema.String,
  maxLiveStreams: Schema.Number,
  maxViewersPerCamera: Schema.NullOr(Schema.Number),
  maxPlaybackStreams: Schema.NullOr(Schema.Number),
  createdAt: Schema.DateTimeUtcFromDate,
  updatedAt: Schema.DateTimeUtcFromDate
}) {
  get limits(): AgencyLimits {
    return new AgencyLimits({
      agencyId: this.id,
      maxLiveStreams: this.maxLiveStreams,
      maxViewersPerCamera: this.maxViewersPerCamera,
      maxPlaybackStreams: this.maxPlaybackStreams
    })
  }
}

export interface NewAgency {
  readonly id: string
  readonly name: string
  readonly maxLiveStreams: number
  readonly maxViewersPerCamera: number | null
  readonly maxPlaybackStreams: number | null
}

/** A partial change: every field but the id. */
export type AgencyPatch = Partial<Omit<NewAgency, "id">>

export class AgencyStoreFailure extends Schema.TaggedError<AgencyStoreFailure>()("AgencyStoreFailure", {
  message: Schema.String
}) {}

/** The id or the name is taken. */
export class AgencyConflict extends Schema.TaggedError<AgencyConflict>()("AgencyConflict", {
  field: Schema.Literals(["id", "name"]),
  value: Schema.String
}) {}

export class AgencyStore extends Context.Service<AgencyStore, {
  readonly list: Effect.Effect<ReadonlyArray<AgencyRecord>, AgencyStoreFailure>
  readonly get: (id: string) => Effect.Effect<Option.Option<AgencyRecord>, AgencyStoreFailure>
  readonly create: (agency: NewAgency) => Effect.Effect<AgencyRecord, AgencyConflict | AgencyStoreFailure>
  /** Applies the fields present in `patch`; none when the id is unknown. */
  readonly update: (
    id: string,
    patch: AgencyPatch
  ) => Effect.Effect<Option.Option<AgencyRecord>, AgencyConflict | AgencyStoreFailure>
}>()("vms/runtime/agencies/AgencyStore") {}

const decodeRows = Schema.decodeUnknownEffect(Schema.Array(AgencyRecord))

const columns: { readonly [K in keyof AgencyPatch]-?: string } = {
  name: "name",
  maxLiveStreams: "max_live_streams",
  maxViewersPerCamera: "max_viewers_per_camera",
  maxPlaybackStreams: "max_playback_streams"
}

const failure = (operation: string) => (error: SqlError.SqlError | Schema.SchemaError) =>
  new AgencyStoreFailure({ message: `${operation}: ${error.message}` })

export const layer: Layer.Layer<AgencyStore, never, SqlClient.SqlClient> = Layer.effect(
  AgencyStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const returning = sql.literal(`
      id, name, max_live_streams AS "maxLiveStreams", max_viewers_per_camera AS "maxViewersPerCamera",
      max_playback_streams AS "maxPlaybackStreams", created_at AS "createdAt", updated_at AS "updatedAt"`)

    const records = (operation: string, rows: ReadonlyArray<unknown>) =>
      decodeRows(rows).pipe(Effect.mapError(failure(operation)))
    const first = (operation: string, rows: ReadonlyArray<unknown>) =>
      Effect.map(records(operation, rows), (found) => Option.fromNullishOr(found[0]))
    /** A unique violation is on the name (`agencies_name_key`) or, on insert, the id (`agencies_pkey`). */
    const conflict = (operation: string, agency: { readonly id?: string; readonly name?: string | undefined }) =>
    (error: SqlError.SqlError) => {
      if (error.reason._tag !== "UniqueViolation") return failure(operation)(error)
      const cause = error.reason.cause
      const constraint = Predicate.hasProperty(cause, "constraint") ? String(cause.constraint) : ""
      return constraint.includes("name") || agency.id === undefined
        ? new AgencyConflict({ field: "name", value: agency.name ?? "" })
        : new AgencyConflict({ field: "id", value: agency.id })
    }

    return AgencyStore.of({
      list: sql`SELECT ${returning} FROM agencies ORDER BY id`.pipe(
        Effect.mapError(failure("list")),
        Effect.flatMap((rows) => records("list", rows)),
        Effect.withSpan("AgencyStore.list")
      ),
      get: Effect.fn("AgencyStore.get")(function*(id: string) {
        const rows = yield* sql`SELECT ${returning} FROM agencies WHERE id = ${id}`.pipe(Effect.mapError(failure("get")))
        return yield* first("get", rows)
      }),
      create: Effect.fn("AgencyStore.create")(function*(agency: NewAgency) {
        const rows = yield* sql`INSERT INTO agencies ${
          sql.insert({
            id: agency.id,
            name: agency.name,
            max_live_streams: agency.maxLiveStreams,
            max_viewers_per_camera: agency.maxViewersPerCamera,
            max_playback_streams: agency.maxPlaybackStreams
          })
        } RETURNING ${returning}`.pipe(Effect.mapError(conflict("create", agency)))
        const record = yield* first("create", rows)
        if (Option.isNone(record)) return yield* new AgencyStoreFailure({ message: "create: INSERT returned no row" })
        return record.value
      }),
      update: Effect.fn("AgencyStore.update")(function*(id: string, patch: AgencyPatch) {
        const set: Record<string, unknown> = {}
        for (const [key, column] of Object.entries(columns)) {
          const value = patch[key as keyof AgencyPatch]
          if (value !== undefined) set[column] = value
        }
        const rows = yield* sql`UPDATE agencies SET ${sql.update({ ...set, updated_at: new Date() })} WHERE id = ${id} RETURNING ${returning}`
          .pipe(Effect.mapError(conflict("update", { name: patch.name })))
        return yield* first("update", rows)
      })
    })
  })
)
