/**
 * Where each node of the cluster answers HTTP: every node writes
 * `node.<id>` → its base URL into the KV bucket `<ns>_nodes` every few
 * seconds (the bucket's max_age drops a dead node), and reads the others'
 * when it must forward a request to a camera's owner. In embedded mode there
 * is no other node.
 */
import { Context, Effect, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import * as os from "node:os"
import { NodeConfig } from "../config/NodeConfig.ts"
import { NodeId } from "../config/NodeId.ts"
import { NatsClient } from "./NatsClient.ts"

/** The key of node `nodeId`'s HTTP address in the `<ns>_nodes` bucket. */
export const nodeKey = (nodeId: string) => `node.${nodeId.replace(/[^A-Za-z0-9_=-]/g, "_")}`

/** The bucket's max_age: an entry outlives its node by up to this. */
export const nodesMaxAgeMs = 10_000

export class NodeDirectory extends Context.Service<NodeDirectory, {
  /** The base URL (`http://host:port`) node `nodeId` advertises, if it is alive. */
  readonly httpUrl: (nodeId: string) => Effect.Effect<Option.Option<string>>
}>()("vms/runtime/sharding/NodeDirectory") {
  static readonly layerLocal = Layer.succeed(NodeDirectory, NodeDirectory.of({ httpUrl: () => Effect.succeedNone }))

  static readonly layerNats = Layer.effect(
    NodeDirectory,
    Effect.gen(function*() {
      const nats = yield* NatsClient
      const config = yield* NodeConfig
      const nodeId = yield* NodeId
      const server = yield* HttpServer.HttpServer
      const bucket = yield* Effect.orDie(nats.bucket("nodes", { maxAgeMs: nodesMaxAgeMs }))
      const address = server.address
      const host = NetAddress.isInetAddress(address) && !["0.0.0.0", "::"].includes(config.httpHost) ? config.httpHost : os.hostname()
      const port = NetAddress.isInetAddress(address) ? address.port : config.httpPort
      const selfUrl = Option.getOrElse(
        config.advertiseUrl,
        () => `http://${host.includes(":") ? `[${host}]` : host}:${port}`
      ).replace(/\/$/, "")
      yield* Effect.tryPromise(() => bucket.put(nodeKey(nodeId), selfUrl)).pipe(
        Effect.ignore,
        Effect.andThen(Effect.sleep("3 seconds")),
        Effect.forever,
        Effect.forkScoped
      )
      const cache = new Map<string, { readonly url: string; readonly at: number }>()
      const httpUrl = (id: string) =>
        Effect.gen(function*() {
          if (id === nodeId) return Option.some(selfUrl)
          const cached = cache.get(id)
          if (cached !== undefined && Date.now() - cached.at < 2_000) return Option.some(cached.url)
          const entry = yield* Effect.tryPromise(() => bucket.get(nodeKey(id))).pipe(Effect.orElseSucceed(() => null))
          if (entry === null || entry.operation !== "PUT") return Option.none()
          const url = entry.string()
          cache.set(id, { url, at: Date.now() })
          return Option.some(url)
        })
      return NodeDirectory.of({ httpUrl })
    })
  )
}
