/**
 * The ViewerSession actor: one effect/cluster entity per viewer session
 * (its id is the session id). Starting asks the agency's `AgencyQuota`
 * actor for a slot; heartbeats (explicit ones here, and live playlist or
 * segment fetches with the session's URL, which renew the reservation on the
 * media path) keep it; without them the reservation lapses after the
 * timeout, the slot is free for the next caller, and the actor notices
 * within its check interval and ends. `Stop` releases at once. The
 * reservation in the store is the session's truth, so an actor that moved
 * to another node picks its session up from there.
 */
import { Effect, Fiber, Option, Schema } from "effect"
import { Entity, type Sharding } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { AgencyNotFound } from "../runtime/cameras/CameraStore.ts"
import { QuotaExceeded, QuotaUnavailable, SessionNotFound } from "../runtime/quota/QuotaModel.ts"
import { type Reservation, ReservationStore } from "../runtime/quota/ReservationStore.ts"
import { QuotaAdmissions, quotaTransport } from "../runtime/quota/QuotaAdmissions.ts"
import { AgencyQuota } from "./AgencyQuota.ts"

export const SessionState = Schema.Struct({
  sessionId: Schema.String,
  cameraId: Schema.String,
  agencyId: Schema.String,
  holder: Schema.String,
  expiresAtMs: Schema.Number
})
export type SessionState = typeof SessionState.Type

export const Start = Rpc.make("Start", {
  payload: { cameraId: Schema.String, agencyId: Schema.String, holder: Schema.String, ttlMs: Schema.Number },
  success: SessionState,
  error: Schema.Union([QuotaExceeded, QuotaUnavailable, AgencyNotFound, SessionNotFound])
})

/** `holder` null: any holder (admins). */
export const Heartbeat = Rpc.make("Heartbeat", {
  payload: { holder: Schema.NullOr(Schema.String), ttlMs: Schema.Number },
  success: SessionState,
  error: Schema.Union([SessionNotFound, QuotaUnavailable])
})

export const Stop = Rpc.make("Stop", {
  payload: { holder: Schema.NullOr(Schema.String) },
  success: SessionState,
  error: Schema.Union([SessionNotFound, QuotaUnavailable])
})

export const ViewerSession = Entity.make("ViewerSession", [Start, Heartbeat, Stop])

/** How often a live session checks that its reservation is still held. */
export const checkIntervalMs = 5_000

export const ViewerSessionLayer = ViewerSession.toLayer(
  Effect.gen(function*() {
    const sessionId = (yield* Entity.CurrentAddress).entityId
    const store = yield* ReservationStore
    const quotaFor = yield* AgencyQuota.client
    const admissions = yield* QuotaAdmissions
    const keepAliveContext = yield* Effect.context<Entity.CurrentAddress | Sharding.Sharding>()
    const keepAlive = (enabled: boolean) => Entity.keepAlive(enabled).pipe(Effect.provideContext(keepAliveContext))
    const annotate = Effect.annotateLogs({ actor: "ViewerSession", sessionId })
    const scope = yield* Effect.scope

    let watchdog: Fiber.Fiber<void> | undefined
    const stateOf = (reservation: Reservation): SessionState => ({
      sessionId,
      cameraId: reservation.cameraId,
      agencyId: reservation.agencyId,
      holder: reservation.holder,
      expiresAtMs: reservation.expiresAtMs
    })

    /** The session is over (stopped, or lapsed without heartbeats): stop watching, let the actor go idle. */
    const ended = (why: string) =>
      Effect.gen(function*() {
        const fiber = watchdog
        watchdog = undefined
        yield* keepAlive(false)
        yield* Effect.logInfo(`viewer session ended: ${why}`).pipe(annotate)
        if (fiber !== undefined) yield* Fiber.interrupt(fiber).pipe(Effect.forkDetach)
      })

    /** While the session lives: checks its reservation; gone (no heartbeat within the timeout) ends it. */
    const watch = Effect.gen(function*() {
      if (watchdog !== undefined) return
      yield* keepAlive(true)
      watchdog = yield* Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(checkIntervalMs)
          const held = yield* store.get(sessionId).pipe(Effect.orElseSucceed(() => Option.some(undefined)))
          if (Option.isNone(held)) {
            yield* ended("no heartbeat within the timeout; its slot is free")
            return
          }
        }
      }).pipe(annotate, Effect.forkIn(scope))
    })

    const owned = (holder: string | null, reservation: Option.Option<Reservation>) =>
      Option.isSome(reservation) && (holder === null || reservation.value.holder === holder)
        ? Effect.succeed(reservation.value)
        : Effect.fail(new SessionNotFound({ sessionId }))

    // Picked up after a move: the session lives on if its reservation does.
    const existing = yield* store.get(sessionId).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isSome(existing)) yield* watch

    return ViewerSession.of({
      Start: ({ payload }) =>
        Effect.gen(function*() {
          const held = yield* store.get(sessionId)
          if (Option.isSome(held) && held.value.holder !== payload.holder) return yield* new SessionNotFound({ sessionId })
          const granted = yield* admissions.admit(payload.agencyId, {
            reservationId: sessionId,
            cameraId: payload.cameraId,
            holder: payload.holder,
            kind: "live",
            ttlMs: payload.ttlMs
          })
          yield* watch
          yield* Effect.logInfo("viewer session started").pipe(
            Effect.annotateLogs({ cameraId: payload.cameraId, agencyId: payload.agencyId, inUse: granted.inUse })
          )
          return {
            sessionId,
            cameraId: payload.cameraId,
            agencyId: payload.agencyId,
            holder: payload.holder,
            expiresAtMs: granted.expiresAtMs
          }
        }).pipe(annotate),
      Heartbeat: ({ payload }) =>
        Effect.gen(function*() {
          const held = yield* owned(payload.holder, yield* store.get(sessionId))
          const renewed = yield* store.renew(sessionId, payload.ttlMs)
          if (Option.isNone(renewed)) return yield* new SessionNotFound({ sessionId })
          yield* watch
          return stateOf({ ...held, expiresAtMs: renewed.value.expiresAtMs })
        }).pipe(annotate, Rpc.fork),
      Stop: ({ payload }) =>
        Effect.gen(function*() {
          const held = yield* owned(payload.holder, yield* store.get(sessionId))
          yield* quotaFor(held.agencyId).Release({ reservationId: sessionId }).pipe(quotaTransport)
          yield* ended("stopped by its viewer")
          return stateOf(held)
        }).pipe(annotate)
    })
  }),
  { mailboxCapacity: 10_000 }
)
