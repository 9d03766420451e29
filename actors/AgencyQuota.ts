/**
 * The AgencyQuota actor: one effect/cluster entity per agency, which admits
 * or refuses the agency's streams under its limits (live streams, viewers
 * per camera, playback and export streams apart). The reservations live in
 * the `ReservationStore` (Redis in cluster mode), whose every change is one
 * atomic step on the store's clock, so nothing is lost and nothing is
 * over-admitted when this actor moves to another node mid-flight. The actor
 * holds the agency's limits (re-read when they change, and every 30 s),
 * counts refusals, and reports the agency's usage from its node.
 */
import { Effect, Option, Schedule, Schema } from "effect"
import { Entity, type Sharding } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { AgencyStore } from "../runtime/agencies/AgencyStore.ts"
import { AgencyNotFound } from "../runtime/cameras/CameraStore.ts"
import { type AgencyUsage, QuotaMetrics } from "../runtime/metrics/QuotaMetrics.ts"
import { type AgencyLimits, limitsFor, QuotaExceeded, QuotaUnavailable, StreamKind } from "../runtime/quota/QuotaModel.ts"
import { ReservationStore } from "../runtime/quota/ReservationStore.ts"

export const Admission = Schema.Struct({
  expiresAtMs: Schema.Number,
  inUse: Schema.Number
})

export const Admit = Rpc.make("Admit", {
  payload: {
    reservationId: Schema.String,
    cameraId: Schema.String,
    holder: Schema.String,
    kind: StreamKind,
    ttlMs: Schema.Number
  },
  success: Admission,
  error: Schema.Union([QuotaExceeded, QuotaUnavailable, AgencyNotFound])
})

/** Ends a reservation at once; answers whether it was still held. */
export const Release = Rpc.make("Release", {
  payload: { reservationId: Schema.String },
  success: Schema.Boolean,
  error: QuotaUnavailable
})

export const QuotaUsage = Schema.Struct({
  agencyId: Schema.String,
  live: Schema.Number,
  playback: Schema.Number
})

export const Usage = Rpc.make("Usage", {
  success: QuotaUsage,
  error: QuotaUnavailable
})

/** The agency's limits changed: read them again before the next admission. */
export const Reload = Rpc.make("Reload")

export const AgencyQuota = Entity.make("AgencyQuota", [Admit, Release, Usage, Reload])

/** Limits are re-read at least this often, in case a change's Reload was lost. */
const limitsMaxAgeMs = 30_000
/** Usage is re-counted this often for the metrics. */
const usageEvery = "5 seconds"

export const AgencyQuotaLayer = AgencyQuota.toLayer(
  Effect.gen(function*() {
    const agencyId = (yield* Entity.CurrentAddress).entityId
    const agencies = yield* AgencyStore
    const store = yield* ReservationStore
    const metrics = yield* QuotaMetrics
    const keepAliveContext = yield* Effect.context<Entity.CurrentAddress | Sharding.Sharding>()
    const keepAlive = (enabled: boolean) => Entity.keepAlive(enabled).pipe(Effect.provideContext(keepAliveContext))
    const annotate = Effect.annotateLogs({ actor: "AgencyQuota", agencyId })

    let limits: { readonly value: AgencyLimits; readonly readAt: number } | undefined
    const readLimits = agencies.get(agencyId).pipe(
      Effect.mapError((error) => new QuotaUnavailable({ message: `cannot read the agency's limits: ${error.message}` })),
      Effect.flatMap(Option.match({
        onNone: () => Effect.fail(new AgencyNotFound({ agencyId })),
        onSome: (agency) => Effect.sync(() => {
          limits = { value: agency.limits, readAt: Date.now() }
          return agency.limits
        })
      }))
    )
    const currentLimits = Effect.suspend(() =>
      limits !== undefined && Date.now() - limits.readAt < limitsMaxAgeMs ? Effect.succeed(limits.value) : readLimits
    )

    const usage: AgencyUsage = { live: 0, playback: 0 }
    metrics.report(agencyId, usage)
    yield* Effect.addFinalizer(() => Effect.sync(() => metrics.forget(agencyId)))
    let keptAlive = false
    const recount = Effect.gen(function*() {
      usage.live = yield* store.usage(agencyId, "live")
      usage.playback = yield* store.usage(agencyId, "playback")
      // Alive while it holds reservations, so its node keeps reporting the agency.
      const busy = usage.live + usage.playback > 0
      if (busy !== keptAlive) {
        keptAlive = busy
        yield* keepAlive(busy)
      }
    })
    yield* recount.pipe(
      Effect.catch((error) => Effect.logWarning("cannot count the agency's reservations", error.message)),
      Effect.repeat(Schedule.spaced(usageEvery)),
      annotate,
      Effect.forkScoped
    )

    const admit = Effect.fn("AgencyQuota.admit")(function*(payload: typeof Admit.payloadSchema.Type) {
      const { limit, perCamera } = limitsFor(yield* currentLimits, payload.kind)
      const answer = yield* store.admit({
        id: payload.reservationId,
        agencyId,
        cameraId: payload.cameraId,
        holder: payload.holder,
        kind: payload.kind,
        limit,
        perCameraLimit: perCamera,
        ttlMs: payload.ttlMs
      })
      if (answer._tag === "Granted") {
        usage[payload.kind] = answer.inUse
        if (!keptAlive) yield* recount.pipe(Effect.ignore)
        return { expiresAtMs: answer.expiresAtMs, inUse: answer.inUse }
      }
      metrics.denied(agencyId)
      const where = answer.scope === "camera" ? `camera ${payload.cameraId}` : `agency ${agencyId}`
      return yield* new QuotaExceeded({
        agencyId,
        limit: answer.limit,
        inUse: answer.inUse,
        kind: payload.kind,
        ...(answer.scope === "camera" ? { cameraId: payload.cameraId } : {}),
        message: `${where} has ${answer.inUse} of ${answer.limit} ${payload.kind} streams in use`
      })
    })

    return AgencyQuota.of({
      Admit: ({ payload }) => admit(payload),
      Release: ({ payload }) =>
        store.release(payload.reservationId).pipe(
          Effect.map(Option.match({
            onNone: () => false,
            onSome: (released) => {
              usage[released.kind] = Math.max(0, usage[released.kind] - 1)
              return true
            }
          }))
        ),
      Usage: () =>
        recount.pipe(Effect.as({ agencyId, live: usage.live, playback: usage.playback })),
      Reload: () =>
        Effect.sync(() => {
          limits = undefined
        }).pipe(Effect.andThen(Effect.logInfo("agency limits changed")), annotate)
    })
  }),
  { concurrency: "unbounded", mailboxCapacity: 10_000 }
)
