/**
 * Where `/ws` connections take notifications directly: the JSON-RPC
 * protocol registers each connection's sink under its client id and marks
 * the connection's calls with a header carrying this process's secret
 * `proof` (a client cannot forge it, so a typed `/rpc` call never reaches a
 * `/ws` socket); `subscribe` then delivers the encoded notification to the
 * sink instead of streaming items through the RPC server one subscriber at a
 * time, and the sink writes `notificationFrame`: the JSON-RPC frame for its
 * subscription id, built once per event and id and shared by every socket.
 */
import { Context, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { type TextFrame, textFrame } from "../runtime/net/CorkedWebSocket.ts"
import type { EncodedNotification } from "./EventSubscriptions.ts"

export const sinkHeader = "x-vms-jsonrpc-sink"

export interface NotificationSink {
  /**
   * Sends the notification to `subscription` (the id `subscribe` answered
   * with on the node) now, or once the subscription's answer is out.
   * Synchronous: it never waits.
   */
  readonly notify: (subscription: string, encoded: EncodedNotification) => void
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

/** `{"jsonrpc":"2.0","method":…,"params":{"subscription":…,…fields}}` as a text frame, made once per event and id. */
export const notificationFrame = (encoded: EncodedNotification, subscription: string): TextFrame => {
  const key = `jsonrpc\n${subscription}`
  let frame = encoded.frames.get(key)
  if (frame === undefined) {
    const id = JSON.stringify(subscription)
    const params = encoded.fieldsJson === "{}"
      ? `{"subscription":${id}}`
      : `{"subscription":${id},${encoded.fieldsJson.slice(1)}`
    frame = textFrame(`{"jsonrpc":"2.0","method":${JSON.stringify(encoded.notification._tag)},"params":${params}}`)
    encoded.frames.set(key, frame)
  }
  return frame
}
