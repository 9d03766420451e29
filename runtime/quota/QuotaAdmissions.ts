/**
 * How a node asks for quota slots: `admit(agencyId, request)` sends the
 * request to the agency's `AgencyQuota` actor, batched with whatever other
 * admissions for the same agency arrive in the same tick (Effect's
 * `RequestResolver`), so a busy agency costs one actor message and one
 * store step per batch rather than per viewer. Each caller gets its own
 * answer: the grant, or the typed `QuotaExceeded`.
 */
import { Context, Effect, Exit, Layer, Request, RequestResolver } from "effect"
import { type AdmitRequest, AgencyQuota } from "../../actors/AgencyQuota.ts"
import type { AgencyNotFound } from "../cameras/CameraStore.ts"
import { type QuotaExceeded, QuotaUnavailable } from "./QuotaModel.ts"

/** At most this many admissions travel in one actor message. */
const maxBatch = 500

const transportErrors = new Set(["MailboxFull", "AlreadyProcessingMessage", "PersistenceError", "EntityNotAssignedToRunner"])
type TransportError = { readonly _tag: "MailboxFull" | "AlreadyProcessingMessage" | "PersistenceError" | "EntityNotAssignedToRunner" }

/** A call to a quota or viewer actor: its transport failures and a 10 s silence are the quota's unavailability. */
export const quotaTransport = <A, E extends { readonly _tag: string }, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, TransportError> | QuotaUnavailable, R> =>
  effect.pipe(
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.fail(new QuotaUnavailable({ message: "the quota actor did not answer within 10 s" }))
    }),
    Effect.mapError((error) =>
      transportErrors.has((error as { _tag: string })._tag)
        ? new QuotaUnavailable({ message: `the quota actor is unreachable (${(error as { _tag: string })._tag})` })
        : error
    )
  ) as never

export interface Granted {
  readonly expiresAtMs: number
  readonly inUse: number
}

class Admission extends Request.Class<
  { readonly agencyId: string; readonly request: AdmitRequest },
  Granted,
  QuotaExceeded | QuotaUnavailable | AgencyNotFound
> {}

export class QuotaAdmissions extends Context.Service<QuotaAdmissions, {
  readonly admit: (
    agencyId: string,
    request: AdmitRequest
  ) => Effect.Effect<Granted, QuotaExceeded | QuotaUnavailable | AgencyNotFound>
  /** Ends a reservation at once (failures are logged: the reservation lapses by itself). */
  readonly release: (agencyId: string, reservationId: string) => Effect.Effect<void>
}>()("vms/runtime/quota/QuotaAdmissions") {
  static readonly layer = Layer.effect(
    QuotaAdmissions,
    Effect.gen(function*() {
      const clientFor = yield* AgencyQuota.client
      const resolver = RequestResolver.makeGrouped<Admission, string>({
        key: (entry) => entry.request.agencyId,
        resolver: (entries, agencyId) =>
          clientFor(agencyId).Admit({ requests: entries.map((entry) => entry.request.request) }).pipe(
            quotaTransport,
            Effect.match({
              onFailure: (error) => {
                for (const entry of entries) entry.completeUnsafe(Exit.fail(error))
              },
              onSuccess: (answers) => {
                answers.forEach((answer, i) =>
                  entries[i]!.completeUnsafe(
                    answer._tag === "Granted"
                      ? Exit.succeed({ expiresAtMs: answer.expiresAtMs, inUse: answer.inUse })
                      : Exit.fail(answer.error)
                  )
                )
              }
            })
          )
      }).pipe(RequestResolver.batchN(maxBatch))
      return QuotaAdmissions.of({
        admit: (agencyId, request) => Effect.request(new Admission({ agencyId, request }), resolver),
        release: (agencyId, reservationId) =>
          clientFor(agencyId).Release({ reservationId }).pipe(
            quotaTransport,
            Effect.catch((error) => Effect.logWarning("quota reservation not released; it lapses by itself", error.message)),
            Effect.asVoid
          )
      })
    })
  )
}
