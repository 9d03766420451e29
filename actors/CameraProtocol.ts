/**
 * The Camera actor's data: its states, its status as clients see it, its
 * snapshot and its errors. Plain schemas with no dependencies, so the event
 * bus, the APIs and the metrics can import them without importing the actor.
 */
import { Schema } from "effect"

export const CameraState = Schema.Literals(["disabled", "offline", "connecting", "online", "error"])
export type CameraState = typeof CameraState.Type

/** The camera's video as ffmpeg reported it on the last connect. */
export const CameraVideo = Schema.Struct({
  codec: Schema.String,
  width: Schema.Number,
  height: Schema.Number
})

export class CameraStatus extends Schema.Class<CameraStatus>("CameraStatus")({
  cameraId: Schema.String,
  status: CameraState,
  reason: Schema.NullOr(Schema.String),
  fps: Schema.Number,
  /** Received video bitrate, bits per second. */
  bitrate: Schema.Number,
  nodeId: Schema.String,
  /** When `status` or `reason` last changed. */
  updatedAt: Schema.DateTimeUtc,
  video: Schema.optionalKey(Schema.NullOr(CameraVideo))
}) {}

export class CameraNotFound extends Schema.TaggedError<CameraNotFound>()("CameraNotFound", {
  cameraId: Schema.String
}) {}

export class CameraStoreError extends Schema.TaggedError<CameraStoreError>()("CameraStoreError", {
  cameraId: Schema.String,
  message: Schema.String
}) {}

/** No live chunk to take a snapshot from (camera offline, or still connecting). */
export class SnapshotUnavailable extends Schema.TaggedError<SnapshotUnavailable>()("SnapshotUnavailable", {
  cameraId: Schema.String,
  message: Schema.String
}) {}

export class Snapshot extends Schema.Class<Snapshot>("Snapshot")({
  cameraId: Schema.String,
  jpeg: Schema.Uint8Array,
  width: Schema.Number,
  height: Schema.Number,
  takenAt: Schema.DateTimeUtc
}) {}
