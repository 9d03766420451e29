/**
 * Agency quotas and viewer sessions as clients see them: the kinds of stream
 * a quota counts, an agency's limits, and the typed errors every API answers
 * with (`QuotaExceeded { agencyId, limit, inUse }` above all). Plain schemas,
 * so the actors, the stores and the APIs share them without importing each
 * other.
 */
import { Schema } from "effect"

/** Live viewing and recorded media (playback and export) are counted separately. */
export const StreamKind = Schema.Literals(["live", "playback"])
export type StreamKind = typeof StreamKind.Type

/** An agency's limits; null means not limited. */
export class AgencyLimits extends Schema.Class<AgencyLimits>("AgencyLimits")({
  agencyId: Schema.String,
  maxLiveStreams: Schema.Number,
  maxViewersPerCamera: Schema.NullOr(Schema.Number),
  maxPlaybackStreams: Schema.NullOr(Schema.Number)
}) {}

/** The limit of `kind` in `limits`, and the per-camera limit that applies with it (live only). */
export const limitsFor = (limits: AgencyLimits, kind: StreamKind) =>
  kind === "live"
    ? { limit: limits.maxLiveStreams, perCamera: limits.maxViewersPerCamera }
    : { limit: limits.maxPlaybackStreams, perCamera: null }

/** The agency (or, with `cameraId`, one camera of it) has no free slot for another stream. */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  agencyId: Schema.String,
  /** The limit that refused: the agency's, or the camera's (`cameraId` set) viewers-per-camera limit. */
  limit: Schema.Number,
  inUse: Schema.Number,
  kind: StreamKind,
  cameraId: Schema.optionalKey(Schema.String),
  message: Schema.String
}) {}

/** The reservation store (Redis in cluster mode) did not answer; nothing was admitted. */
export class QuotaUnavailable extends Schema.TaggedError<QuotaUnavailable>()("QuotaUnavailable", {
  message: Schema.String
}) {}

/** No live viewer session has this id for the caller (never started, stopped, or expired without heartbeats). */
export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()("SessionNotFound", {
  sessionId: Schema.String
}) {}

/** A viewer session as clients see it. */
export const SessionView = Schema.Struct({
  sessionId: Schema.String,
  cameraId: Schema.String,
  agencyId: Schema.String,
  /** The session ends unless a heartbeat (or a live playlist fetch with its URL) comes before this. */
  expiresAt: Schema.DateTimeUtc,
  /** Seconds a session lives without a heartbeat. */
  timeoutSeconds: Schema.Number
})
export type SessionView = typeof SessionView.Type

/** Seconds a viewer session lives without a heartbeat. */
export const viewerTimeoutSeconds = 30
