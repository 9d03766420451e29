/**
 * The handlers of `VmsRpcs`, on the same services as the REST API: the
 * registry (`CameraStore`), the camera actors (`CameraControl`), the
 * recording index and the event bus. Store failures are the node's problem:
 * logged in full, answered as `InternalError` with an id to find the log
 * line. URLs leave only masked.
 */
import { Effect, Option, Queue, Stream } from "effect"
import { randomUUID } from "node:crypto"
import { CameraStatus } from "../actors/CameraProtocol.ts"
import { CameraControl } from "../runtime/cameras/CameraControl.ts"
import { type CameraCreate, CameraView, maskUrlsIn } from "../runtime/cameras/CameraModel.ts"
import { CameraStatusView } from "../runtime/cameras/CameraStatusView.ts"
import { CameraStore } from "../runtime/cameras/CameraStore.ts"
import { EventSubscriptions, type Notification } from "./EventSubscriptions.ts"
import { JsonRpcSinks, sinkHeader } from "./JsonRpcSinks.ts"
import * as ViewingHandlers from "./ViewingHandlers.ts"
import { AuditLog } from "../runtime/audit/AuditLog.ts"
import { RecordingIndex } from "../runtime/recording/RecordingIndex.ts"
import { rangeProblem, RecordingView } from "../runtime/recording/RecordingModel.ts"
import {
  agencyFilter,
  agencyForWrite,
  canSeeCamera,
  type Permission,
  type Principal,
  requirePermission
} from "../runtime/auth/Principal.ts"
import {
  CameraNotFound,
  Forbidden,
  InternalError,
  InvalidParams,
  type NotificationName,
  notificationNames,
  type SubscriptionItem,
  VmsRpcs
} from "./VmsRpcs.ts"

const permissionChecks = new Map<Permission, ReturnType<typeof requirePermission<Forbidden>>>()
/** The check for `permission`, made once and reused by every call. */
const require = (permission: Permission) => {
  let check = permissionChecks.get(permission)
  if (check === undefined) {
    check = requirePermission(permission, (message) => new Forbidden({ message }))
    permissionChecks.set(permission, check)
  }
  return check
}

const internal = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    const requestId = randomUUID()
    yield* Effect.logError("rpc request failed", error.message).pipe(Effect.annotateLogs({ requestId }))
    return yield* new InternalError({ message: `internal error (request ${requestId})`, requestId })
  })

const masked = <E extends { readonly message: string }>(error: E): E => {
  const copy = Object.create(Object.getPrototypeOf(error)) as E
  return Object.assign(copy, error, { message: maskUrlsIn(error.message) })
}

const defaultPageSize = 100

let subscriptionCounter = 0

export const layer = VmsRpcs.toLayer(Effect.gen(function*() {
  const store = yield* CameraStore
  const control = yield* CameraControl
  const statusView = yield* CameraStatusView
  const index = yield* RecordingIndex
  const subscriptions = yield* EventSubscriptions
  const sinks = yield* JsonRpcSinks
  const auditLog = yield* AuditLog
  const audit = (principal: Principal, action: string, cameraId: string, details: Record<string, unknown> = {}) =>
    auditLog.record(principal, { action, targetType: "camera", targetId: cameraId, details: { ...details, via: "rpc" } })

  const reconcile = (cameraId: string) =>
    control.reconcile(cameraId).pipe(
      Effect.catch((error) =>
        Effect.logWarning("camera actor not told of the change", error.message).pipe(Effect.annotateLogs({ cameraId }))
      )
    )

  /**
   * Fails with `CameraNotFound` unless the camera exists and the caller may
   * see it (no existence leaks). Camera agencies are cached for a few seconds
   * (the status call is hot; a camera changing agency is rare), so a moved
   * camera may stay visible to its old agency that long.
   */
  const agencies = new Map<string, { readonly agencyId: string; readonly until: number }>()
  const agencyTtlMs = 5_000
  const visibleCamera = (principal: Principal, cameraId: string): Effect.Effect<void, CameraNotFound | InternalError> => {
    const cached = agencies.get(cameraId)
    if (cached !== undefined && cached.until > Date.now()) {
      return canSeeCamera(principal, { id: cameraId, agencyId: cached.agencyId })
        ? Effect.void
        : Effect.fail(new CameraNotFound({ cameraId }))
    }
    return store.get(cameraId).pipe(
      Effect.catchTag("CameraStoreFailure", internal),
      Effect.flatMap((camera) => {
        if (Option.isNone(camera)) {
          agencies.delete(cameraId)
          return Effect.fail(new CameraNotFound({ cameraId }))
        }
        agencies.set(cameraId, { agencyId: camera.value.agencyId, until: Date.now() + agencyTtlMs })
        if (agencies.size > 100_000) agencies.delete(agencies.keys().next().value!)
        return canSeeCamera(principal, camera.value) ? Effect.void : Effect.fail(new CameraNotFound({ cameraId }))
      })
    )
  }

  const setRecording = Effect.fn("VmsRpcs.setRecording")(function*(cameraId: string, recording: boolean) {
    const principal = yield* require("recording:write")
    yield* visibleCamera(principal, cameraId)
    const updated = yield* store.update(cameraId, { recording }).pipe(
      Effect.catchTags({ CameraStoreFailure: internal, AgencyNotFound: internal })
    )
    if (Option.isNone(updated)) return yield* new CameraNotFound({ cameraId })
    yield* control.reconcile(cameraId).pipe(Effect.catchTag("CameraUnavailable", (error) => Effect.fail(masked(error))))
    yield* audit(principal, recording ? "recording.start" : "recording.stop", cameraId)
    return CameraView.fromRecord(updated.value)
  })

  const viewing = yield* ViewingHandlers.make

  return VmsRpcs.of({
    ...viewing,
    get_camera_list: Effect.fn("VmsRpcs.get_camera_list")(function*(payload) {
      const principal = yield* require("camera:read")
      const agencyId = agencyFilter(principal, payload.agencyId)
      if (agencyId === null) return { items: [] }
      const page = yield* store.list({
        agencyId,
        cursor: payload.cursor,
        limit: payload.limit ?? defaultPageSize
      }).pipe(Effect.catchTag("CameraStoreFailure", internal))
      const items = page.items.filter((camera) => canSeeCamera(principal, camera)).map(CameraView.fromRecord)
      return page.nextCursor === undefined ? { items } : { items, nextCursor: page.nextCursor }
    }),

    // The hot call: no span of its own (the RPC server's span covers it).
    get_camera_status: Effect.fnUntraced(function*({ cameraId }) {
      const principal = yield* require("camera:read")
      yield* visibleCamera(principal, cameraId)
      const status = yield* statusView.status(cameraId).pipe(
        Effect.catchTags({ CameraStoreError: internal, CameraUnavailable: (error) => Effect.fail(masked(error)) })
      )
      return status.reason === null ? status : new CameraStatus({ ...status, reason: maskUrlsIn(status.reason) })
    }),

    add_camera: Effect.fn("VmsRpcs.add_camera")(function*(payload: CameraCreate) {
      const principal = yield* require("camera:write")
      const agencyId = agencyForWrite(principal, payload.agencyId, payload.agencyId === "default")
      if (agencyId === undefined) {
        return yield* new Forbidden({ message: `agencyId: may only add cameras to agency '${principal.agencyId}'` })
      }
      const camera = { ...payload, agencyId, id: payload.id ?? randomUUID() }
      const created = yield* store.create(camera).pipe(Effect.catchTag("CameraStoreFailure", internal))
      yield* reconcile(created.id)
      yield* audit(principal, "camera.create", created.id, { agencyId, name: created.name })
      return CameraView.fromRecord(created)
    }),

    remove_camera: Effect.fn("VmsRpcs.remove_camera")(function*({ cameraId }) {
      const principal = yield* require("camera:write")
      yield* visibleCamera(principal, cameraId)
      const removed = yield* store.remove(cameraId).pipe(Effect.catchTag("CameraStoreFailure", internal))
      agencies.delete(cameraId)
      statusView.forget(cameraId)
      if (!removed) return yield* new CameraNotFound({ cameraId })
      yield* reconcile(cameraId)
      yield* audit(principal, "camera.delete", cameraId)
      return { cameraId, removed: true as const }
    }),

    take_snapshot: Effect.fn("VmsRpcs.take_snapshot")(function*({ cameraId }) {
      const principal = yield* require("camera:read")
      yield* visibleCamera(principal, cameraId)
      const snapshot = yield* control.snapshot(cameraId).pipe(
        Effect.catchTags({
          CameraStoreError: internal,
          CameraUnavailable: (error) => Effect.fail(masked(error)),
          SnapshotUnavailable: (error) => Effect.fail(masked(error))
        })
      )
      return {
        cameraId,
        contentType: "image/jpeg" as const,
        jpegBase64: Buffer.from(snapshot.jpeg).toString("base64"),
        width: snapshot.width,
        height: snapshot.height,
        takenAt: snapshot.takenAt
      }
    }),

    start_recording: ({ cameraId }) => setRecording(cameraId, true),
    stop_recording: ({ cameraId }) => setRecording(cameraId, false),

    list_recordings: Effect.fn("VmsRpcs.list_recordings")(function*(payload) {
      const principal = yield* require("recording:read")
      yield* visibleCamera(principal, payload.cameraId)
      const problem = rangeProblem(payload)
      if (problem !== undefined) {
        return yield* new InvalidParams({ field: problem.field, message: `${problem.field}: ${problem.message}` })
      }
      const limit = payload.limit ?? defaultPageSize
      const after = payload.cursor === undefined ? undefined : Number(payload.cursor)
      const rows = yield* index.list(
        payload.cameraId,
        payload.from,
        payload.to,
        limit + 1,
        after !== undefined && Number.isFinite(after) ? after : undefined
      ).pipe(Effect.catchTag("RecordingIndexError", internal))
      const items = rows.slice(0, limit).map(RecordingView.fromSegment)
      return rows.length > limit ? { items, nextCursor: String(rows[limit - 1]!.startMs) } : { items }
    }),

    subscribe: (payload, { client, headers }) =>
      Stream.unwrap(Effect.gen(function*() {
        const principal = yield* require("events:read")
        const cameraIds = payload.cameraIds === undefined ? undefined : new Set(payload.cameraIds)
        if (cameraIds !== undefined) {
          for (const cameraId of cameraIds) yield* visibleCamera(principal, cameraId)
        }
        const events = new Set<NotificationName>(payload.events ?? notificationNames)
        const subscription = String(++subscriptionCounter)
        const subscribed: SubscriptionItem = { _tag: "subscribed", subscription, events: [...events] }
        // A /ws connection takes the encoded notifications straight to its socket.
        const sink = headers[sinkHeader] === sinks.proof ? sinks.sinks.get(client.id) : undefined
        if (sink !== undefined) {
          yield* subscriptions.add({
            principal,
            events,
            cameraIds,
            deliver: (encoded) => sink.notify(subscription, encoded)
          })
          return Stream.succeed(subscribed).pipe(Stream.concat(Stream.never))
        }
        // Slow consumers lose their oldest notifications, never the node's time.
        const queue = yield* Queue.sliding<Notification>(1_024)
        yield* subscriptions.add({
          principal,
          events,
          cameraIds,
          deliver: (encoded) => void Queue.offerUnsafe(queue, encoded.notification)
        })
        return Stream.succeed(subscribed).pipe(Stream.concat(Stream.fromQueue(queue)))
      }))
  })
}))
