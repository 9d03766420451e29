/**
 * Where `/ws` connections take notifications directly: the JSON-RPC
 * protocol registers each connection's sink under its client id and marks
 * the connection's calls with a header carrying this process's secret
 * `proof` (a client cannot forge it, so a typed `/rpc` call never reaches a
 * `/ws` socket); `subscribe` then delivers ready-made JSON to the sink
 * instead of streaming items through the RPC server one subscriber at a time.
 */
import { Context, type Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"

export const sinkHeader = "x-vms-jsonrpc-sink"

export interface NotificationSink {
  /** Sends `{ jsonrpc, method, params: { subscription, ...fields } }`; `fieldsJson` is a JSON object text. */
  readonly notify: (subscription: string, method: string, fieldsJson: string) => Effect.Effect<void>
}

export class JsonRpcSinks extends Context.Service<JsonRpcSinks, {
  readonly proof: string
  readonly sinks: Map<number, NotificationSink>
}>()("vms/rpc/JsonRpcSinks") {
  static readonly layer = Layer.sync(JsonRpcSinks, () => ({
    proof: randomBytes(24).toString("base64url"),
    sinks: new Map<number, NotificationSink>()
  }))
}
