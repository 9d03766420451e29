/**
 * The layers that differ between the modes, chosen once from the
 * configuration: with `VMS_NATS_URL` the node joins the cluster (sharding
 * over NATS with leases and fencing, events over NATS), without it it runs
 * everything on one in-process runner with an in-process event bus. The
 * NATS-backed layers share one connection; live tails have their own.
 */
import { Effect, Layer, Option } from "effect"
import { NodeConfig } from "../config/NodeConfig.ts"
import { NodeId } from "../config/NodeId.ts"
import { EventBus } from "../events/EventBus.ts"
import { LiveHandover } from "../live/LiveHandover.ts"
import * as NatsEventBus from "../events/NatsEventBus.ts"
import * as LocalSharding from "./LocalSharding.ts"
import { NatsBulkClient, NatsClient } from "./NatsClient.ts"
import { NodeDirectory } from "./NodeDirectory.ts"
import { OwnerProxy } from "../http/OwnerProxy.ts"
import { FetchHttpClient } from "effect/http"
import * as NatsSharding from "./NatsSharding.ts"

const natsClient = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* NodeConfig
    const nodeId = yield* NodeId
    return NatsClient.layer({ url: Option.getOrThrow(config.natsUrl), namespace: config.cluster, name: nodeId })
  })
)

/** The second connection, for the live tails cameras hand over when they move. */
const natsBulkClient = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* NodeConfig
    const nodeId = yield* NodeId
    return NatsBulkClient.layer({ url: Option.getOrThrow(config.natsUrl), namespace: config.cluster, name: nodeId })
  })
)

const isCluster = Effect.map(NodeConfig, (config) => Option.isSome(config.natsUrl))

export const eventBus = Layer.unwrap(
  Effect.map(isCluster, (cluster) => cluster ? NatsEventBus.layer.pipe(Layer.provide(natsClient)) : EventBus.layer)
)

/** Cameras that move hand their live tail to their successor through NATS (cluster mode). */
export const liveHandover = Layer.unwrap(
  Effect.map(isCluster, (cluster) =>
    cluster ? LiveHandover.layerNats.pipe(Layer.provide([natsClient, natsBulkClient])) : LiveHandover.layerLocal)
)

/** Live requests for cameras owned by another node are forwarded to it (cluster mode). */
export const ownerProxy = Layer.unwrap(
  Effect.map(isCluster, (cluster) =>
    cluster
      ? OwnerProxy.layerCluster.pipe(
        Layer.provide(NodeDirectory.layerNats),
        Layer.provide([natsClient, FetchHttpClient.layer])
      )
      : OwnerProxy.layerLocal)
)

export const sharding = Layer.unwrap(
  Effect.gen(function*() {
    if (!(yield* isCluster)) return LocalSharding.layer
    const config = yield* NodeConfig
    const nodeId = yield* NodeId
    return NatsSharding.layer({ nodeId, port: config.httpPort }).pipe(Layer.provide(natsClient))
  })
)
