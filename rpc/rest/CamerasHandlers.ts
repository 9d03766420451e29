/**
 * The cameras endpoints: registry changes go to `CameraStore` and are then
 * announced to the camera's actor (`CameraControl.reconcile`); status and
 * snapshots are the actor's answers. Domain errors become the REST envelope
 * errors of `CamerasApi`; URLs leave only masked.
 */
import { Effect, Option } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { randomUUID } from "node:crypto"
import { CameraStatus } from "../../actors/CameraProtocol.ts"
import { type CameraCreate, type CameraUpdate, CameraView, maskUrlsIn } from "../../runtime/cameras/CameraModel.ts"
import { CameraControl } from "../../runtime/cameras/CameraControl.ts"
import { CameraStore, type CameraStoreFailure } from "../../runtime/cameras/CameraStore.ts"
import {
  AgencyNotFoundError,
  CameraAlreadyExistsError,
  CameraNotFoundError,
  CameraUnavailableError,
  defaultPageSize,
  failWith,
  InternalError,
  RequestId,
  SnapshotUnavailableError
} from "./CamerasApi.ts"
import type { Api } from "./RestApi.ts"
import { ForbiddenError } from "./RestAuth.ts"
import { agencyFilter, agencyForWrite, canSeeCamera, CurrentPrincipal } from "../../runtime/auth/Principal.ts"
import { AuditLog } from "../../runtime/audit/AuditLog.ts"

const notFound = (cameraId: string) => failWith(CameraNotFoundError, `camera '${cameraId}' does not exist`)

const agencyNotFound = (agencyId: string) =>
  failWith(AgencyNotFoundError, `agencyId: agency '${agencyId}' does not exist`, { field: "agencyId", agencyId })

/** Store and actor-store failures are the node's problem: logged in full, answered as 500 with the request id. */
const internal = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    const requestId = yield* RequestId
    yield* Effect.logError("camera request failed", error.message)
    return yield* failWith(InternalError, `internal error (request ${requestId})`)
  })

const storeFailure = { CameraStoreFailure: (error: CameraStoreFailure) => internal(error) }

const newCamera = (payload: CameraCreate) => ({ ...payload, id: payload.id ?? randomUUID() })

export const layer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "cameras",
    Effect.fn(function*(handlers) {
      const store = yield* CameraStore
      const control = yield* CameraControl
      const auditLog = yield* AuditLog

      /** Records who changed the camera (the audit log never fails the change). */
      const audit = (action: string, cameraId: string, details: Record<string, unknown> = {}) =>
        Effect.gen(function*() {
          const principal = yield* CurrentPrincipal
          const requestId = yield* RequestId
          yield* auditLog.record(principal, { action, targetType: "camera", targetId: cameraId, details, requestId })
        })

      /** The registration is committed either way; an actor that missed the news catches up on its next start. */
      const reconcile = (cameraId: string) =>
        control.reconcile(cameraId).pipe(
          Effect.catch((error) =>
            Effect.logWarning("camera actor not told of the change", error.message).pipe(
              Effect.annotateLogs({ cameraId })
            )
          )
        )

      const update = Effect.fn("CamerasApi.update")(function*(id: string, payload: CameraUpdate) {
        const principal = yield* CurrentPrincipal
        if (payload.agencyId !== undefined && agencyForWrite(principal, payload.agencyId, false) === undefined) {
          return yield* failWith(ForbiddenError, `agencyId: may only move cameras within agency '${principal.agencyId}'`)
        }
        const updated = yield* store.update(id, payload).pipe(
          Effect.catchTags({ ...storeFailure, AgencyNotFound: (error) => agencyNotFound(error.agencyId) })
        )
        if (Option.isNone(updated)) return yield* notFound(id)
        yield* reconcile(id)
        yield* audit("camera.update", id, { fields: Object.keys(payload) })
        return CameraView.fromRecord(updated.value)
      })

      return handlers.handleAll({
        list: Effect.fn("CamerasApi.list")(function*({ query }) {
          const principal = yield* CurrentPrincipal
          const agencyId = agencyFilter(principal, query.agencyId)
          if (agencyId === null) return { items: [] }
          const page = yield* store.list({
            agencyId,
            cursor: query.cursor,
            limit: query.limit ?? defaultPageSize
          }).pipe(Effect.catchTags(storeFailure))
          const items = page.items.filter((camera) => canSeeCamera(principal, camera)).map(CameraView.fromRecord)
          return page.nextCursor === undefined ? { items } : { items, nextCursor: page.nextCursor }
        }),

        get: Effect.fn("CamerasApi.get")(function*({ params }) {
          const camera = yield* store.get(params.id).pipe(Effect.catchTags(storeFailure))
          if (Option.isNone(camera)) return yield* notFound(params.id)
          return CameraView.fromRecord(camera.value)
        }),

        create: Effect.fn("CamerasApi.create")(function*({ payload }) {
          const principal = yield* CurrentPrincipal
          const agencyId = agencyForWrite(principal, payload.agencyId, payload.agencyId === "default")
          if (agencyId === undefined) {
            return yield* failWith(ForbiddenError, `agencyId: may only add cameras to agency '${principal.agencyId}'`)
          }
          const camera = newCamera({ ...payload, agencyId })
          const created = yield* store.create(camera).pipe(
            Effect.catchTags({
              ...storeFailure,
              CameraAlreadyExists: () =>
                failWith(CameraAlreadyExistsError, `camera '${camera.id}' already exists`, { id: camera.id }),
              AgencyNotFound: (error) => agencyNotFound(error.agencyId)
            })
          )
          yield* reconcile(created.id)
          yield* audit("camera.create", created.id, { agencyId: created.agencyId, name: created.name })
          return CameraView.fromRecord(created)
        }),

        update: ({ params, payload }) => update(params.id, payload),
        replace: ({ params, payload }) => update(params.id, payload),

        remove: Effect.fn("CamerasApi.remove")(function*({ params }) {
          const removed = yield* store.remove(params.id).pipe(Effect.catchTags(storeFailure))
          if (!removed) return yield* notFound(params.id)
          yield* reconcile(params.id)
          yield* audit("camera.delete", params.id)
        }),

        status: Effect.fn("CamerasApi.status")(function*({ params }) {
          const status = yield* control.status(params.id).pipe(
            Effect.catchTags({
              CameraNotFound: () => notFound(params.id),
              CameraStoreError: internal,
              CameraUnavailable: (error) => failWith(CameraUnavailableError, maskUrlsIn(error.message))
            })
          )
          // A reason may quote ffmpeg, and ffmpeg quotes the URL.
          return status.reason === null ? status : new CameraStatus({ ...status, reason: maskUrlsIn(status.reason) })
        }),

        snapshot: Effect.fn("CamerasApi.snapshot")(function*({ params }) {
          const snapshot = yield* control.snapshot(params.id).pipe(
            Effect.catchTags({
              CameraNotFound: () => notFound(params.id),
              CameraStoreError: internal,
              CameraUnavailable: (error) => failWith(CameraUnavailableError, maskUrlsIn(error.message)),
              SnapshotUnavailable: (error) => failWith(SnapshotUnavailableError, maskUrlsIn(error.message))
            })
          )
          return HttpServerResponse.uint8Array(snapshot.jpeg, {
            contentType: "image/jpeg",
            headers: { "cache-control": "no-store" }
          })
        })
      })
    })
  )
