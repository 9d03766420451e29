/**
 * Typed events from actors to whoever listens (the RPC layer's subscriptions,
 * tests, later the NATS bridge of cluster mode). In-process here: an
 * unbounded-fan-out PubSub where a slow subscriber loses its oldest events
 * rather than slowing actors down.
 */
import { Context, Effect, Layer, PubSub, Schema, type Scope, Stream } from "effect"
import { CameraStatus } from "../../actors/CameraProtocol.ts"

export class CameraStatusChanged extends Schema.TaggedClass<CameraStatusChanged>()("CameraStatusChanged", {
  status: CameraStatus
}) {}

/** Something an operator must act on: the spool passed its threshold, storage is full. */
export class RecordingAlert extends Schema.TaggedClass<RecordingAlert>()("RecordingAlert", {
  kind: Schema.Literals(["spool-threshold", "storage-full"]),
  message: Schema.String,
  nodeId: Schema.String,
  at: Schema.DateTimeUtc
}) {}

/** A camera's recording started or stopped on its node. */
export class RecordingStatusChanged extends Schema.TaggedClass<RecordingStatusChanged>()("RecordingStatusChanged", {
  cameraId: Schema.String,
  recording: Schema.Boolean,
  nodeId: Schema.String,
  at: Schema.DateTimeUtc
}) {}

export const VmsEvent = Schema.Union([CameraStatusChanged, RecordingAlert, RecordingStatusChanged])
export type VmsEvent = typeof VmsEvent.Type

export class EventBus extends Context.Service<EventBus, {
  readonly publish: (event: VmsEvent) => Effect.Effect<void>
  /** Events published from now on; each subscriber buffers up to 1,024. */
  readonly subscribe: Stream.Stream<VmsEvent>
  /** Subscribes now (for the scope), so nothing published after this returns is missed; same buffering. */
  readonly subscription: Effect.Effect<Stream.Stream<VmsEvent>, never, Scope.Scope>
}>()("vms/runtime/events/EventBus") {
  static readonly layer = Layer.effect(
    EventBus,
    Effect.gen(function*() {
      const pubsub = yield* Effect.acquireRelease(PubSub.sliding<VmsEvent>(1_024), PubSub.shutdown)
      return EventBus.of({
        publish: (event) => PubSub.publish(pubsub, event).pipe(Effect.asVoid),
        subscribe: Stream.fromPubSub(pubsub),
        subscription: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription)
      })
    })
  )
}
