/**
 * Where agency quota reservations live: per agency and kind, the ids of the
 * streams that hold a slot, each with an expiry; per camera, the same for the
 * viewers-per-camera limit; per reservation, who holds it. Every change is
 * one atomic step: expire what is due, renew a reservation that is present,
 * compare with the limit, add. Two stores keep this contract (one test suite
 * proves both): Redis with Lua scripts on the server's clock
 * (`RedisReservationStore.ts`, cluster mode) and the in-process store here
 * (embedded mode).
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { NodeConfig } from "../config/NodeConfig.ts"
import type { QuotaUnavailable, StreamKind } from "./QuotaModel.ts"
import * as RedisReservationStore from "./RedisReservationStore.ts"

export interface ReservationRequest {
  /** The reservation's id: the viewer session's id. */
  readonly id: string
  readonly agencyId: string
  readonly cameraId: string
  /** Who holds it (`user:<id>`, `token:<id>`, …): only they may renew or end it through the APIs. */
  readonly holder: string
  readonly kind: StreamKind
  /** The agency's limit for `kind`; null: not limited. */
  readonly limit: number | null
  /** The camera's limit for `kind`; null: not limited. */
  readonly perCameraLimit: number | null
  readonly ttlMs: number
}

export type Admission =
  | { readonly _tag: "Granted"; readonly expiresAtMs: number; readonly inUse: number }
  | {
    readonly _tag: "Refused"
    readonly scope: "agency" | "camera"
    readonly limit: number
    readonly inUse: number
  }

export interface Reservation {
  readonly id: string
  readonly agencyId: string
  readonly cameraId: string
  readonly holder: string
  readonly kind: StreamKind
  readonly expiresAtMs: number
}

export interface ReservationStoreShape {
  /**
   * Admits each request under its limits (or renews it when it is already
   * held), in order, as one atomic step; one answer per request.
   */
  readonly admitMany: (requests: ReadonlyArray<ReservationRequest>) => Effect.Effect<ReadonlyArray<Admission>, QuotaUnavailable>
  /** Renews a reservation that is present and unexpired for another `ttlMs`; none when it is gone. */
  readonly renew: (id: string, ttlMs: number) => Effect.Effect<Option.Option<Reservation>, QuotaUnavailable>
  /** Ends a reservation at once; what it was, or none when it was already gone. */
  readonly release: (id: string) => Effect.Effect<Option.Option<Reservation>, QuotaUnavailable>
  /** The reservation if it is present and unexpired. */
  readonly get: (id: string) => Effect.Effect<Option.Option<Reservation>, QuotaUnavailable>
  /** Unexpired reservations of the agency's `kind`. */
  readonly usage: (agencyId: string, kind: StreamKind) => Effect.Effect<number, QuotaUnavailable>
}

export class ReservationStore extends Context.Service<ReservationStore, ReservationStoreShape>()(
  "vms/runtime/quota/ReservationStore"
) {}

// ---------------------------------------------------------------------------
// In process

interface Held {
  readonly reservation: Omit<Reservation, "expiresAtMs">
  expiresAtMs: number
}

/** Reservation ids of an agency (or one camera of it), and no member expires before `earliest`. */
interface Group {
  readonly ids: Set<string>
  earliest: number
}

/** The in-process store; `now` is its clock (milliseconds). */
export const makeMemory = (now: () => number = Date.now): ReservationStoreShape => {
  const held = new Map<string, Held>()
  /** Groups by `kind/agency` and by `kind/agency/camera`. */
  const groups = new Map<string, Group>()
  const agencyKey = (kind: string, agencyId: string) => `${kind}\u0000${agencyId}`
  const cameraKey = (kind: string, agencyId: string, cameraId: string) => `${kind}\u0000${agencyId}\u0000${cameraId}`

  const drop = (id: string, entry: Held) => {
    held.delete(id)
    const { kind, agencyId, cameraId } = entry.reservation
    for (const key of [agencyKey(kind, agencyId), cameraKey(kind, agencyId, cameraId)]) {
      const group = groups.get(key)
      group?.ids.delete(id)
      if (group?.ids.size === 0) groups.delete(key)
    }
  }
  /** The unexpired members of a group; the expired are dropped, by a sweep only once one is due. */
  const count = (key: string, at: number): number => {
    const group = groups.get(key)
    if (group === undefined) return 0
    if (group.earliest > at) return group.ids.size
    let earliest = Infinity
    for (const id of group.ids) {
      const entry = held.get(id)
      if (entry === undefined) group.ids.delete(id)
      else if (entry.expiresAtMs <= at) drop(id, entry)
      else earliest = Math.min(earliest, entry.expiresAtMs)
    }
    group.earliest = earliest
    return group.ids.size
  }
  const live = (id: string, at: number): Held | undefined => {
    const entry = held.get(id)
    if (entry === undefined) return undefined
    if (entry.expiresAtMs > at) return entry
    drop(id, entry)
    return undefined
  }
  const view = (entry: Held): Reservation => ({ ...entry.reservation, expiresAtMs: entry.expiresAtMs })
  const addTo = (key: string, id: string, expiresAtMs: number) => {
    const group = groups.get(key)
    if (group === undefined) groups.set(key, { ids: new Set([id]), earliest: expiresAtMs })
    else {
      group.ids.add(id)
      group.earliest = Math.min(group.earliest, expiresAtMs)
    }
  }

  const admit = (request: ReservationRequest, at: number): Admission => {
    const byAgency = agencyKey(request.kind, request.agencyId)
    const byCamera = cameraKey(request.kind, request.agencyId, request.cameraId)
    const inUse = count(byAgency, at)
    const onCamera = count(byCamera, at)
    const present = live(request.id, at)
    if (present !== undefined) {
      // Renewing only moves expiry later, so every group's `earliest` stays a lower bound.
      present.expiresAtMs = at + request.ttlMs
      return { _tag: "Granted", expiresAtMs: present.expiresAtMs, inUse }
    }
    if (request.limit !== null && inUse >= request.limit) {
      return { _tag: "Refused", scope: "agency", limit: request.limit, inUse }
    }
    if (request.perCameraLimit !== null && onCamera >= request.perCameraLimit) {
      return { _tag: "Refused", scope: "camera", limit: request.perCameraLimit, inUse: onCamera }
    }
    const { id, agencyId, cameraId, holder, kind } = request
    const expiresAtMs = at + request.ttlMs
    held.set(id, { reservation: { id, agencyId, cameraId, holder, kind }, expiresAtMs })
    addTo(byAgency, id, expiresAtMs)
    addTo(byCamera, id, expiresAtMs)
    return { _tag: "Granted", expiresAtMs, inUse: inUse + 1 }
  }

  return {
    admitMany: (requests) =>
      Effect.sync(() => {
        const at = now()
        return requests.map((request) => admit(request, at))
      }),
    renew: (id, ttlMs) =>
      Effect.sync(() => {
        const at = now()
        const entry = live(id, at)
        if (entry === undefined) return Option.none()
        entry.expiresAtMs = at + ttlMs
        return Option.some(view(entry))
      }),
    release: (id) =>
      Effect.sync(() => {
        const entry = live(id, now())
        if (entry === undefined) return Option.none()
        drop(id, entry)
        return Option.some(view(entry))
      }),
    get: (id) =>
      Effect.sync(() => {
        const entry = live(id, now())
        return entry === undefined ? Option.none() : Option.some(view(entry))
      }),
    usage: (agencyId, kind) => Effect.sync(() => count(agencyKey(kind, agencyId), now()))
  }
}

export const layerMemory = Layer.sync(ReservationStore, () => makeMemory())

// ---------------------------------------------------------------------------
// The node's store

/** Redis when `VMS_REDIS_URL` is set (keys under `<cluster>:`, shared by the cluster's nodes); in process otherwise. */
export const layer: Layer.Layer<ReservationStore, never, NodeConfig> = Layer.unwrap(
  Effect.map(NodeConfig, (config) =>
    Option.isSome(config.redisUrl)
      ? Layer.effect(
        ReservationStore,
        Effect.map(RedisReservationStore.connect(Redacted.value(config.redisUrl.value)), (redis) =>
          RedisReservationStore.make(redis, `${config.cluster}:`))
      )
      : layerMemory)
)
