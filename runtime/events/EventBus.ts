/**
 * Typed events from actors to whoever listens (the RPC layer's subscriptions,
 * tests, later the NATS bridge of cluster mode). In-process here: an
 * unbounded-fan-out PubSub where a slow subscriber loses its oldest events
 * rather than slowing actors down.
 */
import { Context, Effect, Layer, PubSub, Schema, Stream } from "effect"
import { CameraStatus } from "../../actors/CameraProtocol.ts"

export class CameraStatusChanged extends Schema.TaggedClass<CameraStatusChanged>()("CameraStatusChanged", {
  status: CameraStatus
}) {}

export const VmsEvent = Schema.Union([CameraStatusChanged])
export type VmsEvent = typeof VmsEvent.Type

export class EventBus extends Context.Service<EventBus, {
  readonly publish: (event: VmsEvent) => Effect.Effect<void>
  /** Events published from now on; each subscriber buffers up to 1,024. */
  readonly subscribe: Stream.Stream<VmsEvent>
}>()("vms/runtime/events/EventBus") {
  static readonly layer = Layer.effect(
    EventBus,
    Effect.gen(function*() {
      const pubsub = yield* Effect.acquireRelease(PubSub.sliding<VmsEvent>(1_024), PubSub.shutdown)
      return EventBus.of({
        publish: (event) => PubSub.publish(pubsub, event).pipe(Effect.asVoid),
        subscribe: Stream.fromPubSub(pubsub)
      })
    })
  )
}
