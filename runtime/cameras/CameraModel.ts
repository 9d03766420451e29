/**
 * The camera as API clients see and send it: `CameraView` (credentials
 * masked, ISO-8601 timestamps), `CameraCreate` and `CameraUpdate` (validated
 * bodies whose failures name the field). Shared by REST and, later, RPC.
 * Storage is `CameraStore`'s concern; this module never touches it.
 */
import { Effect, Schema, SchemaAST, SchemaTransformation } from "effect"
import type { CameraRecord } from "./CameraStore.ts"

// ---------------------------------------------------------------------------
// Fields

/** Postgres text cannot hold NUL, and no name or URL needs a control character. */
export const isPrintable = Schema.makeFilter<string>((text) => !/[\u0000-\u001f\u007f]/.test(text), {
  message: "must not contain control characters"
})

/** Operator-chosen camera ids are slugs; generated ones are UUIDs (which are slugs too). */
export const CameraId = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
    message: "must be 1 to 64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
  })
)

const CameraName = Schema.String.pipe(
  Schema.decodeTo(
    Schema.String.check(
      Schema.isMinLength(1, { message: "must not be empty" }),
      Schema.isMaxLength(200, { message: "must be at most 200 characters" }),
      isPrintable
    ),
    SchemaTransformation.trim()
  )
)

export const maxUrlLength = 2048

const parseUrl = (url: string): URL | undefined => {
  try {
    return new URL(url)
  } catch {
    return undefined
  }
}

const isRtspUrl = (input: string): boolean => {
  const url = parseUrl(input)
  return url !== undefined && (url.protocol === "rtsp:" || url.protocol === "rtsps:") && url.hostname !== ""
}

/** The message never repeats the input: a URL may carry a password. */
export const RtspUrl = Schema.String.check(
  Schema.isMaxLength(maxUrlLength, { message: `must be at most ${maxUrlLength} characters` }),
  isPrintable,
  Schema.makeFilter<string>((url) => isRtspUrl(url), {
    message: "must be an rtsp:// or rtsps:// URL with a host"
  })
)

const AgencyId = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(200, { message: "must be at most 200 characters" }),
  isPrintable
)

const retentionMessage = { message: "must be a whole number of days from 1 to 3650" }
const RetentionDays = Schema.Number.check(
  Schema.isInt(retentionMessage),
  Schema.isBetween({ minimum: 1, maximum: 3650 }, retentionMessage)
)

const LocationName = Schema.String.check(
  Schema.isMaxLength(200, { message: "must be at most 200 characters" }),
  isPrintable
)

const Latitude = Schema.Finite.check(
  Schema.isBetween({ minimum: -90, maximum: 90 }, { message: "must be between -90 and 90" })
)

const Longitude = Schema.Finite.check(
  Schema.isBetween({ minimum: -180, maximum: 180 }, { message: "must be between -180 and 180" })
)

const defaultTo = <S extends Schema.Constraint>(value: S["Encoded"]) =>
  Schema.withDecodingDefaultKey<S>(Effect.succeed(value))

// ---------------------------------------------------------------------------
// Bodies

/**
 * `POST /cameras`. Without an `id` the API generates a UUID. Decode with
 * `bodyParseOptions` so unknown fields are reported, not dropped.
 */
export const CameraCreate = Schema.Struct({
  id: Schema.optionalKey(CameraId),
  name: CameraName,
  url: RtspUrl,
  agencyId: AgencyId.pipe(defaultTo("default")),
  enabled: Schema.Boolean.pipe(defaultTo(true)),
  recording: Schema.Boolean.pipe(defaultTo(false)),
  retentionDays: Schema.NullOr(RetentionDays).pipe(defaultTo(null)),
  locationName: Schema.NullOr(LocationName).pipe(defaultTo(null)),
  latitude: Schema.NullOr(Latitude).pipe(defaultTo(null)),
  longitude: Schema.NullOr(Longitude).pipe(defaultTo(null))
}).annotate({ identifier: "CameraCreate" })
export type CameraCreate = typeof CameraCreate.Type

/** `PATCH /cameras/{id}`: any subset of the fields but the id, at least one; `null` clears a nullable field. */
export const CameraUpdate = Schema.Struct({
  name: Schema.optionalKey(CameraName),
  url: Schema.optionalKey(RtspUrl),
  agencyId: Schema.optionalKey(AgencyId),
  enabled: Schema.optionalKey(Schema.Boolean),
  recording: Schema.optionalKey(Schema.Boolean),
  retentionDays: Schema.optionalKey(Schema.NullOr(RetentionDays)),
  locationName: Schema.optionalKey(Schema.NullOr(LocationName)),
  latitude: Schema.optionalKey(Schema.NullOr(Latitude)),
  longitude: Schema.optionalKey(Schema.NullOr(Longitude))
}).check(
  Schema.makeFilter((patch) => Object.keys(patch).length > 0, { message: "must change at least one field" })
).annotate({ identifier: "CameraUpdate" })
export type CameraUpdate = typeof CameraUpdate.Type

/** Unknown fields are errors (a typo must not silently do nothing); every problem is reported. */
export const bodyParseOptions: SchemaAST.ParseOptions = { onExcessProperty: "error", errors: "all" }

// ---------------------------------------------------------------------------
// What clients see

export class CameraView extends Schema.Class<CameraView>("CameraView")({
  id: Schema.String,
  name: Schema.String,
  /** Credentials masked: `rtsp://***:***@host:554/path`. */
  url: Schema.String,
  agencyId: Schema.String,
  enabled: Schema.Boolean,
  recording: Schema.Boolean,
  retentionDays: Schema.NullOr(Schema.Number),
  locationName: Schema.NullOr(Schema.String),
  latitude: Schema.NullOr(Schema.Number),
  longitude: Schema.NullOr(Schema.Number),
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
}) {
  static fromRecord(record: CameraRecord): CameraView {
    return new CameraView({ ...record, url: maskUrl(record.url) })
  }
}

// ---------------------------------------------------------------------------
// Masking

const mask = "***"
const secretQueryKeys = /^(user(name)?|pass(word)?|pwd|passwd|token|auth|key|secret|apikey|api_key)$/i

const maskQuery = (search: string): string =>
  search.replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, separator: string, key: string) =>
    secretQueryKeys.test(decodeURIComponent(key)) ? `${separator}${key}=${mask}` : whole)

/**
 * The URL with its user and password (and credential-like query values)
 * replaced by `***`. A URL that does not parse has everything between the
 * scheme and its last `@` masked, so nothing that might be a password leaks.
 */
export const maskUrl = (url: string): string => {
  const parsed = parseUrl(url)
  if (parsed === undefined || parsed.hostname === "") {
    const at = url.lastIndexOf("@")
    if (at === -1) return url
    const schemeEnd = url.indexOf("://")
    const prefix = schemeEnd !== -1 && schemeEnd < at ? url.slice(0, schemeEnd + 3) : ""
    return `${prefix}${mask}@${url.slice(at + 1)}`
  }
  const userinfo = parsed.username === "" && parsed.password === ""
    ? ""
    : parsed.password === ""
    ? `${mask}@`
    : `${mask}:${mask}@`
  const port = parsed.port === "" ? "" : `:${parsed.port}`
  return `${parsed.protocol}//${userinfo}${parsed.hostname}${port}${parsed.pathname}${maskQuery(parsed.search)}${parsed.hash}`
}

/** `text` with every URL in it masked, for messages that may quote one (ffmpeg errors, actor reasons). */
export const maskUrlsIn = (text: string): string =>
  text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (url) => maskUrl(url))
