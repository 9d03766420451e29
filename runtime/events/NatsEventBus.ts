/**
 * The event bus of cluster mode: every node publishes its actors' events on
 * `<ns>.events.<tag>` and every node subscribes to `<ns>.events.>`, so a
 * client connected to any node sees the events of cameras owned by any other
 * (its own come back through NATS too, in the order they were published).
 * Events are Schema-encoded JSON; a message that does not decode is dropped
 * with a warning, never delivered half-read. Subscribers behave as with the
 * in-process bus: each buffers up to 1,024 events and a slow one loses its
 * oldest.
 */
import { Effect, Layer, PubSub, Schema, Stream } from "effect"
import { NatsClient } from "../sharding/NatsClient.ts"
import { EventBus, VmsEvent } from "./EventBus.ts"

const VmsEventJson = Schema.fromJsonString(Schema.toCodecJson(VmsEvent))
const encode = Schema.encodeSync(VmsEventJson)
const decode = Schema.decodeUnknownExit(VmsEventJson)

export const layer = Layer.effect(
  EventBus,
  Effect.gen(function*() {
    const nats = yield* NatsClient
    const nc = nats.connection
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<VmsEvent>(1_024), PubSub.shutdown)
    const subject = `${nats.namespace}.events`
    let undecodable = 0
    const subscription = yield* Effect.acquireRelease(
      Effect.sync(() =>
        nc.subscribe(`${subject}.>`, {
          callback: (error, msg) => {
            if (error !== null) return
            const event = decode(msg.string())
            if (event._tag === "Success") PubSub.publishUnsafe(pubsub, event.value)
            else undecodable++
          }
        })
      ),
      (subscription) => Effect.sync(() => subscription.unsubscribe())
    )
    yield* Effect.gen(function*() {
      let reported = 0
      while (true) {
        yield* Effect.sleep("10 seconds")
        if (undecodable > reported) {
          yield* Effect.logWarning("dropped events that did not decode").pipe(Effect.annotateLogs({ count: undecodable - reported }))
          reported = undecodable
        }
      }
    }).pipe(Effect.forkScoped)
    // Subscribed before anyone can publish: no event of this node is missed by its own listeners.
    yield* Effect.promise(() => nc.flush())
    void subscription
    return EventBus.of({
      publish: (event) =>
        Effect.sync(() => {
          if (!nc.isClosed()) nc.publish(`${subject}.${event._tag}`, encode(event))
        }),
      subscribe: Stream.fromPubSub(pubsub),
      subscription: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription)
    })
  })
)
