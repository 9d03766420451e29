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

export const AdmitRequest = Schema.Struct({
  reservationId: Schema.String,
  cameraId: Schema.String,
  holder: Schema.String,
  kind: StreamKind,
  ttlMs: Schema.Number
})
export type AdmitRequest = typeof AdmitRequest.Type

export const AdmitAnswer = Schema.Union([
  Schema.TaggedStruct("Granted", { expiresAtMs: Schema.Number, inUse: Schema.Number }),
  Schema.TaggedStruct("Refused", { error: QuotaExceeded })
])
export type AdmitAnswer = typeof AdmitAnswer.Type

/**
 * Admits or refuses each request, in order, as one atomic step of the store;
 * one answer per request. Callers batch what arrives together
 * (`QuotaAdmissions`), so a busy agency costs one message per batch.
 */
export const Admit = Rpc.make("Admit", {
  payload: { requests: Schema.Array(AdmitRequest) },
  success: Schema.Array(AdmitAnswer),
  error: Schema.Union([QuotaUnavailable, AgencyNotFound])
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

    const refusal = (request: AdmitRequest, scope: "agency" | "camera", limit: number, inUse: number) =>
      new QuotaExceeded({
        agencyId,
        limit,
        inUse,
        kind: request.kind,
        ...(scope === "camera" ? { cameraId: request.cameraId } : {}),
        message: `${scope === "camera" ? `camera ${request.cameraId}` : `agency ${agencyId}`} has ${inUse} of ${limit} ${request.kind} streams in use`
      })

    const admit = Effect.fn("AgencyQuota.admit")(function*(requests: ReadonlyArray<AdmitRequest>) {
      const current = yield* currentLimits
      const answers = yield* store.admitMany(requests.map((request) => {
        const { limit, perCamera } = limitsFor(current, request.kind)
        return {
          id: request.reservationId,
          agencyId,
          cameraId: request.cameraId,
          holder: request.holder,
          kind: request.kind,
          limit,
          perCameraLimit: perCamera,
          ttlMs: request.ttlMs
        }
      }))
      let granted = false
      const out = answers.map((answer, i): AdmitAnswer => {
        const request = requests[i]!
        if (answer._tag === "Granted") {
          usage[request.kind] = answer.inUse
          granted = true
          return { _tag: "Granted", expiresAtMs: answer.expiresAtMs, inUse: answer.inUse }
        }
        metrics.denied(agencyId)
        return { _tag: "Refused", error: refusal(request, answer.scope, answer.limit, answer.inUse) }
      })
      if (granted && !keptAlive) yield* recount.pipe(Effect.ignore)
      return out
    })

    return AgencyQuota.of({
      Admit: ({ payload }) => admit(payload.requests),
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
