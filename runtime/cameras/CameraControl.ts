/**
 * What the API layers (REST now, RPC later) may ask of a camera's actor,
 * without knowing where it runs: tell it that its registration changed,
 * read its live status, take a snapshot. The node provides it over the
 * sharding client, so the actor may live on this node or another one.
 */
import { Context, type Effect, Schema } from "effect"
import {
  CameraNotFound,
  type CameraStatus,
  CameraStoreError,
  Snapshot,
  SnapshotUnavailable
} from "../../actors/CameraProtocol.ts"

export { CameraNotFound, CameraStoreError, Snapshot, SnapshotUnavailable }

/** The actor could not be reached or did not answer in time. */
export class CameraUnavailable extends Schema.TaggedError<CameraUnavailable>()("CameraUnavailable", {
  cameraId: Schema.String,
  message: Schema.String
}) {}

export class CameraControl extends Context.Service<CameraControl, {
  /** The camera's row changed (created, updated, deleted): the actor re-reads it and applies it. */
  readonly reconcile: (cameraId: string) => Effect.Effect<void, CameraUnavailable>
  readonly status: (
    cameraId: string
  ) => Effect.Effect<CameraStatus, CameraNotFound | CameraStoreError | CameraUnavailable>
  readonly snapshot: (
    cameraId: string
  ) => Effect.Effect<Snapshot, CameraNotFound | CameraStoreError | CameraUnavailable | SnapshotUnavailable>
}>()("vms/CameraControl") {}
