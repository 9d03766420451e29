/**
 * The fan-out of events to `subscribe` callers: one subscription to the
 * event bus for the node, each event turned into its notification and
 * encoded to JSON once (`EncodedNotification`), then handed to every
 * subscriber whose filter (events, cameras, agency, token scope) lets it
 * through. Subscribers are plain synchronous callbacks and the loop over
 * them is plain code, one event to all its subscribers in one go (no fiber
 * or Effect per subscriber): the typed `/rpc` path offers to its stream's
 * queue; the JSON-RPC `/ws` path writes a ready-made frame to its socket
 * (one per subscription id, and `/ws` numbers subscriptions per connection,
 * so usually one buffer for all), so one event to a thousand WebSocket
 * clients costs one encoding, one frame and a thousand writes. Camera agencies are cached for a few seconds (a camera
 * changing agency late-delivers to its old agency that long).
 */
import { Context, Effect, Layer, Option, Schema, type Scope, Stream } from "effect"
import { canSeeCamera, type Principal } from "../runtime/auth/Principal.ts"
import { maskUrlsIn } from "../runtime/cameras/CameraModel.ts"
import { CameraStore } from "../runtime/cameras/CameraStore.ts"
import { EventBus, type VmsEvent } from "../runtime/events/EventBus.ts"
import type { TextFrame } from "../runtime/net/CorkedWebSocket.ts"
import { Alert, CameraStatusUpdate, type NotificationName, RecordingStatusUpdate } from "./VmsRpcs.ts"

export const Notification = Schema.Union([CameraStatusUpdate, RecordingStatusUpdate, Alert])
export type Notification = typeof Notification.Type

const encodeNotification = Schema.encodeSync(Schema.toCodecJson(Notification))

/** The notification an event becomes (credentials in reasons masked), or undefined. */
export const toNotification = (event: VmsEvent): Notification | undefined => {
  switch (event._tag) {
    case "CameraStatusChanged": {
      const status = event.status
      return {
        _tag: "camera_status_update",
        ...status,
        reason: status.reason === null ? null : maskUrlsIn(status.reason)
      }
    }
    case "RecordingStatusChanged":
      return {
        _tag: "recording_status_update",
        cameraId: event.cameraId,
        recording: event.recording,
        nodeId: event.nodeId,
        at: event.at
      }
    case "RecordingAlert":
      return { _tag: "alert", kind: event.kind, message: event.message, nodeId: event.nodeId, cameraId: null, at: event.at }
  }
}

/** A notification as every subscriber gets it: encoded once per event. */
export interface EncodedNotification {
  readonly notification: Notification
  /** Its fields (without `_tag`) as a JSON object text. */
  readonly fieldsJson: string
  /** Wire frames the transports make of it, by their key: each built once per event, however many sockets get it. */
  readonly frames: Map<string, TextFrame>
}

export const encode = (notification: Notification): EncodedNotification => {
  const { _tag, ...fields } = encodeNotification(notification) as { readonly _tag: string }
  return { notification, fieldsJson: JSON.stringify(fields), frames: new Map() }
}

export interface Subscriber {
  readonly principal: Principal
  readonly events: ReadonlySet<NotificationName>
  /** Only these cameras; every camera the principal may see when undefined. */
  readonly cameraIds: ReadonlySet<string> | undefined
  /** Called in the fan-out's loop, one subscriber after another: it must neither wait nor throw. */
  readonly deliver: (encoded: EncodedNotification) => void
}

export class EventSubscriptions extends Context.Service<EventSubscriptions, {
  /** Delivers from now until the scope closes. */
  readonly add: (subscriber: Subscriber) => Effect.Effect<void, never, Scope.Scope>
}>()("vms/rpc/EventSubscriptions") {
  static readonly layer: Layer.Layer<EventSubscriptions, never, EventBus | CameraStore> = Layer.effect(
    EventSubscriptions,
    Effect.gen(function*() {
      const bus = yield* EventBus
      const store = yield* CameraStore
      const subscribers = new Set<Subscriber>()
      const agencies = new Map<string, { readonly agencyId: string | null; readonly until: number }>()
      const agencyTtlMs = 5_000

      const agencyOf = (cameraId: string): Effect.Effect<string | null> => {
        const cached = agencies.get(cameraId)
        if (cached !== undefined && cached.until > Date.now()) return Effect.succeed(cached.agencyId)
        return store.get(cameraId).pipe(
          Effect.map((camera) => Option.isSome(camera) ? camera.value.agencyId : null),
          Effect.catch(() => Effect.succeed(null)),
          Effect.tap((agencyId) =>
            Effect.sync(() => {
              agencies.set(cameraId, { agencyId, until: Date.now() + agencyTtlMs })
              if (agencies.size > 100_000) agencies.delete(agencies.keys().next().value!)
            })
          )
        )
      }

      const needsAgency = (subscriber: Subscriber) =>
        subscriber.principal.role !== "admin"

      const fanOut = Effect.fnUntraced(function*(event: VmsEvent) {
        if (subscribers.size === 0) return
        const notification = toNotification(event)
        if (notification === undefined) return
        const cameraId = notification.cameraId
        // Looked up once per event, and only when a non-admin may receive it.
        let agencyId: string | null | undefined
        if (cameraId !== null) {
          for (const subscriber of subscribers) {
            if (needsAgency(subscriber)) {
              agencyId = yield* agencyOf(cameraId)
              break
            }
          }
        }
        const encoded = encode(notification)
        let failures: Array<unknown> | undefined
        for (const subscriber of subscribers) {
          if (!subscriber.events.has(notification._tag)) continue
          if (cameraId === null) {
            if (subscriber.principal.role !== "admin") continue
          } else {
            if (subscriber.cameraIds !== undefined && !subscriber.cameraIds.has(cameraId)) continue
            if (needsAgency(subscriber)) {
              if (agencyId === null || agencyId === undefined) continue
              if (!canSeeCamera(subscriber.principal, { id: cameraId, agencyId })) continue
            } else if (subscriber.principal.cameraIds !== null && !subscriber.principal.cameraIds.includes(cameraId)) {
              continue
            }
          }
          try {
            subscriber.deliver(encoded)
          } catch (defect) {
            ;(failures ??= []).push(defect)
          }
        }
        if (failures !== undefined) {
          yield* Effect.logWarning("event delivery failed", ...failures.map(String))
        }
      })

      const events = yield* bus.subscription
      // One event goes to all its subscribers in one synchronous loop: other
      // fibers (an ffmpeg spawn, say) run between events, not in the middle of one.
      yield* events.pipe(Stream.runForEach(fanOut), Effect.forkScoped)

      return EventSubscriptions.of({
        add: (subscriber) =>
          Effect.acquireRelease(
            Effect.sync(() => void subscribers.add(subscriber)),
            () => Effect.sync(() => void subscribers.delete(subscriber))
          )
      })
    })
  )
}
