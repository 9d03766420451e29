/**
 * Recordings as API clients see and ask for them: instants (ISO-8601 with
 * a zone, decoded to epoch milliseconds), time ranges, the segment view and
 * the timeline view. Shared by the REST endpoints and the playback and
 * export routes; decoding failures name the field.
 */
import { Effect, Schema, SchemaIssue, SchemaTransformation } from "effect"
import type { RecordedSegment } from "./RecordingIndex.ts"

const isoInstant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/

const instantMessage = "must be an ISO-8601 date-time with a zone, e.g. 2026-01-01T12:00:00Z"

/** An ISO-8601 instant in a URL, as epoch milliseconds. */
export const Instant = Schema.String.check(
  Schema.makeFilter<string>((text) => isoInstant.test(text) && Number.isFinite(Date.parse(text)), { message: instantMessage })
).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform<number, string>({
      decode: (text) => Date.parse(text),
      encode: (ms) => new Date(ms).toISOString()
    })
  )
)

/** Camera ids in URLs (the patterns of camera ids, so no path can be named). */
export const CameraIdParam = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, { message: "must be a camera id (1 to 64 of A-Z a-z 0-9 - _)" })
)

export const RangeQuery = Schema.Struct({ from: Instant, to: Instant })

/** The longest range one request may ask for (playlist, timeline, export). */
export const maxRangeMs = 31 * 24 * 3_600_000

/** What is wrong with a decoded range, as `[field, message]`, or undefined. */
export const rangeProblem = (range: { readonly from: number; readonly to: number }, maxMs = maxRangeMs) =>
  range.to <= range.from
    ? { field: "to", message: "must be after from" }
    : range.to - range.from > maxMs
    ? { field: "to", message: `must be at most ${Math.round(maxMs / 3_600_000)} hours after from` }
    : undefined

export class RecordingView extends Schema.Class<RecordingView>("Recording")({
  id: Schema.String,
  cameraId: Schema.String,
  start: Schema.String,
  end: Schema.String,
  durationMs: Schema.Number,
  bytes: Schema.Number,
  codec: Schema.NullOr(Schema.String),
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  nodeId: Schema.String
}) {
  static fromSegment(segment: RecordedSegment) {
    return new RecordingView({
      id: segment.id,
      cameraId: segment.cameraId,
      start: new Date(segment.startMs).toISOString(),
      end: new Date(segment.endMs).toISOString(),
      durationMs: segment.durationMs,
      bytes: segment.bytes,
      codec: segment.codec,
      width: segment.width,
      height: segment.height,
      nodeId: segment.nodeId
    })
  }
}

export const Span = Schema.Struct({ start: Schema.String, end: Schema.String })

export class TimelineView extends Schema.Class<TimelineView>("Timeline")({
  cameraId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  /** Recorded time, segments that follow each other merged. */
  recorded: Schema.Array(Span),
  /** Time in the range with no recording. */
  gaps: Schema.Array(Span)
}) {}

export const toSpan = (interval: { readonly startMs: number; readonly endMs: number }) => ({
  start: new Date(interval.startMs).toISOString(),
  end: new Date(interval.endMs).toISOString()
})

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => issue._tag === "MissingKey" ? "is required" : SchemaIssue.defaultLeafHook(issue)
})

/** Decodes query parameters for a plain route; failures as `{ field, message }` naming each parameter. */
export const decodeQuery = <S extends Schema.Decoder<unknown>>(schema: S, query: unknown) =>
  Schema.decodeUnknownEffect(schema)(query, { errors: "all", onExcessProperty: "ignore" }).pipe(
    Effect.mapError((error) =>
      formatIssues(error.issue).issues.map((issue) => ({
        field: issue.path === undefined || issue.path.length === 0
          ? "query"
          : issue.path.map((segment) => String(typeof segment === "object" && segment !== null ? segment.key : segment)).join("."),
        message: issue.message
      }))
    )
  )
