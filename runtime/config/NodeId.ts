/**
 * This node's id in the cluster: `VMS_NODE_ID`, or the host name. Written
 * into status (`nodeId`), index rows and logs.
 */
import { Context, Effect, Layer, Option } from "effect"
import * as os from "node:os"
import { NodeConfig } from "./NodeConfig.ts"

export class NodeId extends Context.Service<NodeId, string>()("vms/runtime/config/NodeId") {
  static readonly layer = Layer.effect(
    NodeId,
    Effect.gen(function*() {
      const config = yield* NodeConfig
      return Option.getOrElse(config.nodeId, () => os.hostname().replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 63) || "node")
    })
  )
}
