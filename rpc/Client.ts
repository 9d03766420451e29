/**
 * The typed client of the node's RPC API (`/rpc`, Effect's serialization
 * over WebSocket): every `VmsRpcs` procedure as a method, with typed
 * payloads, results and errors; `subscribe` is a `Stream`.
 *
 *   const program = Effect.gen(function*() {
 *     const vms = yield* VmsClient
 *     const page = yield* vms.get_camera_list({})
 *   }).pipe(Effect.provide(VmsClient.layer("ws://127.0.0.1:8080/rpc", { apiKey })))
 *
 * Credentials go in the WebSocket handshake (`Authorization: Bearer` for an
 * access token, `X-API-Key` for an API key).
 */
import { Context, Layer } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import type { RpcClientError } from "effect/rpc/RpcClientError"
import { Socket } from "effect/socket"
import * as CorkedWebSocket from "../runtime/net/CorkedWebSocket.ts"
import { VmsRpcs } from "./VmsRpcs.ts"

export interface Credentials {
  /** An access token from `/api/v1/auth/login`. */
  readonly accessToken?: string | undefined
  /** An API token, or the bootstrap token. */
  readonly apiKey?: string | undefined
}

export class VmsClient extends Context.Service<VmsClient, RpcClient.RpcClient<RpcGroupRpcs, RpcClientError>>()(
  "vms/rpc/VmsClient"
) {
  /**
   * A client on one WebSocket to `url` (`ws://host:port/rpc`), for the layer's
   * lifetime. `tracing: true` gives each call a client span (with its trace id
   * sent along); off by default, as a span costs more than a status call.
   */
  static readonly layer = (url: string, credentials: Credentials = {}, options: { readonly tracing?: boolean } = {}) =>
    Layer.effect(VmsClient, RpcClient.make(VmsRpcs, { disableTracing: options.tracing !== true })).pipe(
      Layer.provide(RpcClient.layerProtocolSocket({ retryTransientErrors: false })),
      Layer.provide(RpcSerialization.layerJson),
      Layer.provide(
        Layer.effect(Socket.Socket, Socket.makeWebSocket(url, { headers: handshakeHeaders(credentials) })).pipe(
          Layer.provide(CorkedWebSocket.layerWebSocketConstructor)
        )
      )
    )
}

type RpcGroupRpcs = typeof VmsRpcs extends { readonly requests: ReadonlyMap<string, infer R> } ? R : never

const handshakeHeaders = (credentials: Credentials): Record<string, string> => ({
  ...(credentials.accessToken === undefined ? {} : { authorization: `Bearer ${credentials.accessToken}` }),
  ...(credentials.apiKey === undefined ? {} : { "x-api-key": credentials.apiKey })
})
