/**
 * A node, as a composition of layers: configuration and observability at the
 * bottom, then the database, then sharding with the actors on it, and the
 * HTTP server beside them (it starts first, so `/health/ready` can say what
 * is still starting). Cluster mode swaps the sharding layer; nothing else.
 */
import { Layer } from "effect"
import { CameraLayer } from "../actors/Camera.ts"
import { DataDir } from "./config/DataDir.ts"
import { NodeConfig, type NodeConfigShape } from "./config/NodeConfig.ts"
import { NodeId } from "./config/NodeId.ts"
import * as Database from "./database/Database.ts"
import { Readiness } from "./health/Readiness.ts"
import * as HttpServer from "./http/HttpServer.ts"
import * as Logging from "./logging/Logging.ts"
import { Metrics } from "./metrics/Metrics.ts"
import * as LocalSharding from "./sharding/LocalSharding.ts"

/** Dependencies `/health/ready` waits for until their layers register a check. */
const startingDependencies = ["database", "shards"]

const foundation = (config: NodeConfigShape) => {
  const configLayer = Layer.succeed(NodeConfig, config)
  return Layer.mergeAll(
    configLayer,
    NodeId.layer.pipe(Layer.provide(configLayer)),
    DataDir.layer.pipe(Layer.provide(configLayer)),
    Readiness.layerExpecting(startingDependencies),
    Metrics.layer
  )
}

/** The actors this node runs, on the sharding layer of its mode. */
const actors = Layer.mergeAll(CameraLayer).pipe(Layer.provideMerge(LocalSharding.layer))

/** Everything behind readiness: the database, then sharding and actors. */
const services = actors.pipe(Layer.provideMerge(Database.layer))

/** The whole node for a decoded configuration. */
export const layer = (config: NodeConfigShape) =>
  Layer.mergeAll(HttpServer.layer, services).pipe(
    Layer.provideMerge(foundation(config)),
    Layer.provide(Logging.layer(config.logLevel))
  )
