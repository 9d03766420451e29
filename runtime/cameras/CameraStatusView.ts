/**
 * This node's view of camera statuses, for the hot `get_camera_status` call:
 * every `CameraStatusChanged` on the event bus (this node's actors, and in
 * cluster mode every node's, over NATS) replaces the camera's entry at once,
 * and a read the view cannot answer goes to the camera's actor
 * (`CameraControl.status`) and keeps its answer.
 *
 * An entry answers for `freshMs` after it arrived. Actors publish state
 * changes, not their per-second rates (fps, bitrate) or stream info, so an
 * answer's rates are at most that old; the bound also covers events lost on
 * the way (a NATS reconnect, a subscriber that fell behind). Concurrent
 * misses for one camera share one actor call. A read of an entry past half
 * its life also asks the actor, in the background, so a camera read all the
 * time is renewed before its entry runs out and its readers never wait. An older status (by
 * `updatedAt`) never replaces a newer one. What a caller may see is not this
 * module's business: the API checks agency and scope before it asks.
 */
import { Context, DateTime, Deferred, Effect, Layer, Stream } from "effect"
import type { CameraStatus } from "../../actors/CameraProtocol.ts"
import { EventBus } from "../events/EventBus.ts"
import { CameraControl } from "./CameraControl.ts"

type StatusError = Effect.Error<ReturnType<CameraControl["Service"]["status"]>>

interface Entry {
  readonly status: CameraStatus
  readonly updatedMs: number
  readonly receivedAt: number
}

export interface CameraStatusViewOptions {
  /** How long an entry answers without news from the bus (ms). */
  readonly freshMs: number
  /** Entries kept at most; the oldest inserted goes first. */
  readonly maxEntries: number
}

export const defaultOptions: CameraStatusViewOptions = { freshMs: 1_000, maxEntries: 100_000 }

export class CameraStatusView extends Context.Service<CameraStatusView, {
  /** The camera's current status: from the view when fresh, else from its actor. */
  readonly status: (cameraId: string) => Effect.Effect<CameraStatus, StatusError>
  /** Forgets the camera (removed here); the next read asks its actor. */
  readonly forget: (cameraId: string) => void
}>()("vms/runtime/cameras/CameraStatusView") {
  static readonly layerWith = (
    options: CameraStatusViewOptions
  ): Layer.Layer<CameraStatusView, never, EventBus | CameraControl> =>
    Layer.effect(
      CameraStatusView,
      Effect.gen(function*() {
        const bus = yield* EventBus
        const control = yield* CameraControl
        const entries = new Map<string, Entry>()
        const inFlight = new Map<string, Deferred.Deferred<CameraStatus, StatusError>>()

        /** Keeps `status` unless the view holds a newer one. */
        const offer = (status: CameraStatus) => {
          const updatedMs = DateTime.toEpochMillis(status.updatedAt)
          const current = entries.get(status.cameraId)
          if (current !== undefined && current.updatedMs > updatedMs) return
          entries.delete(status.cameraId)
          entries.set(status.cameraId, { status, updatedMs, receivedAt: Date.now() })
          if (entries.size > options.maxEntries) entries.delete(entries.keys().next().value!)
        }

        const events = yield* bus.subscription
        yield* events.pipe(
          Stream.runForEach((event) => Effect.sync(() => event._tag === "CameraStatusChanged" && offer(event.status))),
          Effect.forkScoped
        )

        // The actor call runs in the view's scope: a caller that goes away does not fail the others waiting on it.
        const scope = yield* Effect.scope
        const fromActor = (cameraId: string): Effect.Effect<CameraStatus, StatusError> => {
          const waiting = inFlight.get(cameraId)
          if (waiting !== undefined) return Deferred.await(waiting)
          const deferred = Deferred.makeUnsafe<CameraStatus, StatusError>()
          inFlight.set(cameraId, deferred)
          return control.status(cameraId).pipe(
            Effect.tap((status) => Effect.sync(() => offer(status))),
            Effect.onExit((exit) =>
              Effect.sync(() => {
                inFlight.delete(cameraId)
                Deferred.doneUnsafe(deferred, exit)
              })
            ),
            Effect.forkIn(scope),
            Effect.andThen(Deferred.await(deferred))
          )
        }

        const renewAfterMs = options.freshMs / 2
        return CameraStatusView.of({
          status: (cameraId) => {
            const entry = entries.get(cameraId)
            if (entry !== undefined) {
              const age = Date.now() - entry.receivedAt
              if (age < renewAfterMs || (age < options.freshMs && inFlight.has(cameraId))) return Effect.succeed(entry.status)
              if (age < options.freshMs) return Effect.as(Effect.forkIn(Effect.ignore(fromActor(cameraId)), scope), entry.status)
            }
            return fromActor(cameraId)
          },
          forget: (cameraId) => void entries.delete(cameraId)
        })
      })
    )

  static readonly layer = CameraStatusView.layerWith(defaultOptions)
}
