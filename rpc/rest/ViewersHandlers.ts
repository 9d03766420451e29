/**
 * Handlers of the `viewers` and `agencies` groups. Viewer sessions go
 * through `ViewerSessions` (the same path as RPC and JSON-RPC); agency
 * changes go to `AgencyStore`, are audited, and tell the agency's quota
 * actor to read its limits again.
 */
import { DateTime, Effect, Option } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { randomUUID } from "node:crypto"
import { AgencyQuota } from "../../actors/AgencyQuota.ts"
import { quotaTransport } from "../../runtime/quota/QuotaAdmissions.ts"
import { AgencyStore, type AgencyRecord } from "../../runtime/agencies/AgencyStore.ts"
import { AuditLog } from "../../runtime/audit/AuditLog.ts"
import { CurrentPrincipal } from "../../runtime/auth/Principal.ts"
import type { QuotaExceeded } from "../../runtime/quota/QuotaModel.ts"
import { ViewerSessions } from "../../runtime/quota/ViewerSessions.ts"
import { CameraNotFoundError, failWith, InternalError, RequestId } from "./CamerasApi.ts"
import type { Api } from "./RestApi.ts"
import { ForbiddenError } from "./RestAuth.ts"
import {
  AgencyConflictError,
  AgencyMissingError,
  QuotaExceededError,
  QuotaUnavailableError,
  SessionNotFoundError
} from "./ViewersApi.ts"

const internal = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    const requestId = yield* RequestId
    yield* Effect.logError("request failed", error.message)
    return yield* failWith(InternalError, `internal error (request ${requestId})`)
  })

/** The refusal as the envelope: 429 with the numbers in `details`. */
export const quotaExceeded = (error: QuotaExceeded) =>
  failWith(QuotaExceededError, error.message, {
    agencyId: error.agencyId,
    limit: error.limit,
    inUse: error.inUse,
    kind: error.kind,
    ...(error.cameraId === undefined ? {} : { cameraId: error.cameraId })
  })

const unavailable = (error: { readonly message: string }) =>
  Effect.logWarning("quota unavailable", error.message).pipe(Effect.andThen(failWith(QuotaUnavailableError, error.message)))

const sessionNotFound = (error: { readonly sessionId: string }) =>
  failWith(SessionNotFoundError, `viewer session '${error.sessionId}' does not exist or has ended`)

export const viewersLayer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "viewers",
    Effect.fn(function*(handlers) {
      const sessions = yield* ViewerSessions
      return handlers.handleAll({
        start: Effect.fn("ViewersApi.start")(function*({ payload }) {
          const principal = yield* CurrentPrincipal
          const grant = yield* sessions.start(principal, payload.cameraId).pipe(
            Effect.catchTags({
              CameraNotFound: (error) => failWith(CameraNotFoundError, `camera '${error.cameraId}' does not exist`),
              QuotaExceeded: quotaExceeded,
              QuotaUnavailable: unavailable,
              AgencyNotFound: (error) => internal({ message: `the caller's agency '${error.agencyId}' does not exist` }),
              CameraStoreFailure: internal
            })
          )
          return { ...grant.session, liveUrl: grant.liveUrl }
        }),
        heartbeat: Effect.fn("ViewersApi.heartbeat")(function*({ params }) {
          const principal = yield* CurrentPrincipal
          return yield* sessions.heartbeat(principal, params.id).pipe(
            Effect.catchTags({ SessionNotFound: sessionNotFound, QuotaUnavailable: unavailable })
          )
        }),
        stop: Effect.fn("ViewersApi.stop")(function*({ params }) {
          const principal = yield* CurrentPrincipal
          return yield* sessions.stop(principal, params.id).pipe(
            Effect.catchTags({ SessionNotFound: sessionNotFound, QuotaUnavailable: unavailable })
          )
        })
      })
    })
  )

const agencyView = (agency: AgencyRecord, inUse?: { readonly live: number; readonly playback: number }) => ({
  id: agency.id,
  name: agency.name,
  maxLiveStreams: agency.maxLiveStreams,
  maxViewersPerCamera: agency.maxViewersPerCamera,
  maxPlaybackStreams: agency.maxPlaybackStreams,
  createdAt: DateTime.formatIso(agency.createdAt),
  updatedAt: DateTime.formatIso(agency.updatedAt),
  ...(inUse === undefined ? {} : { inUse })
})

/** An id from a name: `Transit Police` → `transit-police`. */
export const slugOf = (name: string) => {
  const slug = name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63)
  return slug === "" ? `agency-${randomUUID().slice(0, 8)}` : slug.replace(/-+$/, "")
}

export const agenciesLayer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "agencies",
    Effect.fn(function*(handlers) {
      const store = yield* AgencyStore
      const audit = yield* AuditLog
      const quotaFor = yield* AgencyQuota.client
      const requireAdmin = Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        if (principal.role !== "admin") return yield* failWith(ForbiddenError, `role '${principal.role}' may not manage agencies`)
        return principal
      })
      const conflict = (error: { readonly field: "id" | "name"; readonly value: string }) =>
        failWith(AgencyConflictError, `${error.field}: an agency '${error.value}' exists`, { field: error.field })
      const missing = (agencyId: string) => failWith(AgencyMissingError, `agency '${agencyId}' does not exist`)

      return handlers.handleAll({
        list: Effect.fn("AgenciesApi.list")(function*() {
          const principal = yield* CurrentPrincipal
          const all = yield* store.list.pipe(Effect.catchTag("AgencyStoreFailure", internal))
          const visible = principal.role === "admin" ? all : all.filter((agency) => agency.id === principal.agencyId)
          return { items: visible.map((agency) => agencyView(agency)) }
        }),
        get: Effect.fn("AgenciesApi.get")(function*({ params }) {
          const principal = yield* CurrentPrincipal
          if (principal.role !== "admin" && principal.agencyId !== params.id) return yield* missing(params.id)
          const agency = yield* store.get(params.id).pipe(Effect.catchTag("AgencyStoreFailure", internal))
          if (Option.isNone(agency)) return yield* missing(params.id)
          const usage = yield* quotaFor(params.id).Usage().pipe(
            quotaTransport,
            Effect.catchTag("QuotaUnavailable", unavailable)
          )
          return agencyView(agency.value, { live: usage.live, playback: usage.playback })
        }),
        create: Effect.fn("AgenciesApi.create")(function*({ payload }) {
          const principal = yield* requireAdmin
          const requestId = yield* RequestId
          const agency = yield* store.create({
            id: payload.id ?? slugOf(payload.name),
            name: payload.name,
            maxLiveStreams: payload.maxLiveStreams,
            maxViewersPerCamera: payload.maxViewersPerCamera ?? null,
            maxPlaybackStreams: payload.maxPlaybackStreams ?? null
          }).pipe(Effect.catchTags({ AgencyConflict: conflict, AgencyStoreFailure: internal }))
          yield* audit.record(principal, {
            action: "agency.create",
            targetType: "agency",
            targetId: agency.id,
            details: { ...payload },
            requestId
          })
          return agencyView(agency)
        }),
        update: Effect.fn("AgenciesApi.update")(function*({ params, payload }) {
          const principal = yield* requireAdmin
          const requestId = yield* RequestId
          const before = yield* store.get(params.id).pipe(Effect.catchTag("AgencyStoreFailure", internal))
          if (Option.isNone(before)) return yield* missing(params.id)
          const updated = yield* store.update(params.id, payload).pipe(
            Effect.catchTags({ AgencyConflict: conflict, AgencyStoreFailure: internal })
          )
          if (Option.isNone(updated)) return yield* missing(params.id)
          // The quota actor reads its limits at most 30 s late anyway; this makes it now.
          yield* quotaFor(params.id).Reload().pipe(
            quotaTransport,
            Effect.catch((error) => Effect.logWarning("agency quota actor not told of the change", error.message))
          )
          const was = before.value
          yield* audit.record(principal, {
            action: "agency.update",
            targetType: "agency",
            targetId: params.id,
            details: {
              changes: payload,
              before: {
                name: was.name,
                maxLiveStreams: was.maxLiveStreams,
                maxViewersPerCamera: was.maxViewersPerCamera,
                maxPlaybackStreams: was.maxPlaybackStreams
              }
            },
            requestId
          })
          return agencyView(updated.value)
        })
      })
    })
  )
