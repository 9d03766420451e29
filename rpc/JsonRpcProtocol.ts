/**
 * `/ws`: the `VmsRpcs` group as JSON-RPC 2.0 over WebSocket, for clients in
 * any language. An `RpcServer.Protocol` of our own: Effect's `RpcServer`
 * runs the handlers (payload decoding, concurrency, interruption when the
 * socket closes) and encodes payloads, results and errors with the JSON
 * codec of `RpcSerialization.jsonRpc`; this module and the two beside it
 * own the wire.
 *
 * Why not `RpcSerialization.layerJsonRpc` as it is (effect 4.1.0): it is
 * JSON-RPC-shaped but not JSON-RPC 2.0. A frame that is not JSON becomes a
 * "Defect" reply whose `id` is -32603; unknown methods and invalid params
 * are defects with `code: 0`; failures carry the whole encoded `Cause` with
 * `code: 0`; non-object batch members are dropped silently and `[]` gets no
 * answer; `jsonrpc: "2.0"` is never checked; a client's ids key the server's
 * requests (two calls with the same id collide); streams are sent as
 * non-standard `{ chunk: true }` messages. So here: every frame is checked
 * against the specification first, and only valid calls reach the server,
 * under an id of our own (`JsonRpcCalls.ts`); answers, errors, batches and
 * subscriptions' notifications are written per connection
 * (`JsonRpcConnection.ts`).
 *
 * This module builds the methods' payload decoders, the protocol, and the
 * `/ws` upgrade handler, which serves each connection until it closes.
 *
 * Authentication: credentials in the upgrade request's headers
 * (`Authorization: Bearer …` or `X-API-Key`), or an `authenticate` call with
 * `{ "token" }` or `{ "apiKey" }` (browsers cannot set WebSocket headers);
 * they go with every later call of the connection.
 */
import { Effect, type Exit, Queue, Schema, type Scope } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { type Rpc, type RpcGroup, RpcSerialization, RpcServer } from "effect/rpc"
import type { FromServerEncoded, RequestEncoded } from "effect/rpc/RpcMessage"
import type * as net from "node:net"
import { bodyParseOptions } from "../runtime/cameras/CameraModel.ts"
import { CorkedWebSocket } from "../runtime/net/CorkedWebSocket.ts"
import { type Authenticate, makeCalls } from "./JsonRpcCalls.ts"
import { type Connection, notify, onResponse } from "./JsonRpcConnection.ts"
import type { JsonRpcSinks } from "./JsonRpcSinks.ts"
import { sinkHeader } from "./JsonRpcSinks.ts"

export { type Authenticate, maxFrameBytes } from "./JsonRpcCalls.ts"

export interface Options {
  readonly authenticate?: Authenticate | undefined
  /** Called with +1 / -1 as connections open and close (for `vms_ws_connections`). */
  readonly onConnection?: ((delta: 1 | -1) => void) | undefined
  /** Where `subscribe` may deliver encoded notifications straight to this protocol's sockets. */
  readonly sinks?: JsonRpcSinks["Service"] | undefined
}

/**
 * The protocol and the `/ws` upgrade handler. Run `RpcServer.make(group)`
 * with the protocol provided; route `GET /ws` to `httpEffect`.
 */
export const make = <Rpcs extends Rpc.Any>(group: RpcGroup.RpcGroup<Rpcs>, options: Options = {}) =>
  Effect.gen(function*() {
    const { codecFor } = RpcSerialization.jsonRpc({ controlMessages: false })
    const disconnects = yield* Queue.make<number>()
    const connections = new Map<number, Connection>()
    const clientIds = new Set<number>()
    let nextClientId = 0
    let writeRequest!: (clientId: number, message: RequestEncoded) => Effect.Effect<void>

    const decoders = new Map<string, (input: unknown) => Exit.Exit<unknown, Schema.SchemaError>>()
    for (const [tag, rpc] of group.requests) {
      decoders.set(tag, Schema.decodeUnknownExit(codecFor((rpc as unknown as Rpc.AnyWithProps).payloadSchema) as any, bodyParseOptions) as any)
    }

    const { onFrame } = makeCalls({
      decoders,
      authenticate: options.authenticate,
      // `writeRequest` is set once the protocol below is made.
      writeRequest: (clientId, message) => writeRequest(clientId, message)
    })

    const protocol = yield* RpcServer.Protocol.make((write) => {
      writeRequest = write as any
      return Effect.succeed({
        disconnects,
        send: (clientId: number, message: FromServerEncoded) => {
          const connection = connections.get(clientId)
          return connection === undefined ? Effect.void : onResponse(connection, message)
        },
        end: () => Effect.void,
        clientIds: Effect.sync(() => clientIds),
        initialMessage: Effect.succeedNone,
        supportsAck: false,
        supportsTransferables: false,
        supportsSpanPropagation: false,
        supportsNotifications: true,
        codecFor
      })
    })

    /** `GET /ws`: upgrades, then serves the connection until it closes. */
    const httpEffect: Effect.Effect<
      HttpServerResponse.HttpServerResponse,
      never,
      HttpServerRequest.HttpServerRequest | Scope.Scope
    > = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const socket = yield* Effect.orDie(request.upgrade)
      const writer = yield* socket.writer
      const clientId = nextClientId++
      // The ws connection under `socket` (found once the upgrade completed), for notifications.
      const tcpSocket = (request.source as { readonly socket?: net.Socket }).socket
      let webSocket: CorkedWebSocket | undefined
      const connection: Connection = {
        write: (frame) => Effect.ignore(writer.write(frame)),
        sendFrame: (frame) => {
          if (webSocket === undefined && tcpSocket !== undefined) webSocket = CorkedWebSocket.onTcpSocket(tcpSocket)
          if (webSocket !== undefined) return webSocket.sendFrame(frame)
          // A server whose connections are not CorkedWebSockets: ws's own send, through Effect's writer.
          Effect.runFork(connection.write(frame.payload.toString()))
        },
        subscriptions: new Map(),
        nextSubscription: 0,
        early: new Map(),
        headers: Object.entries(request.headers).filter(([name]) =>
          name === "authorization" || name === "x-api-key" || name === "x-forwarded-for" || name === "x-vms-loopback"
        ).concat(options.sinks === undefined ? [] : [[sinkHeader, options.sinks.proof]]),
        pending: new Map(),
        closed: false
      }
      connections.set(clientId, connection)
      if (options.sinks !== undefined) {
        options.sinks.sinks.set(clientId, {
          notify: (nodeSubscription, encoded) => notify(connection, nodeSubscription, encoded)
        })
      }
      clientIds.add(clientId)
      options.onConnection?.(1)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          connections.delete(clientId)
          clientIds.delete(clientId)
          options.sinks?.sinks.delete(clientId)
          options.onConnection?.(-1)
        }).pipe(Effect.andThen(Queue.offer(disconnects, clientId)))
      )
      const decoder = new TextDecoder()
      yield* Effect.gen(function*() {
        const { pull } = yield* socket.reader
        while (true) {
          const frames = yield* pull
          for (const frame of frames) {
            yield* onFrame(clientId, connection, typeof frame === "string" ? frame : decoder.decode(frame))
          }
        }
      }).pipe(
        Effect.catch(() => Effect.void),
        Effect.ensuring(Effect.sync(() => {
          connection.closed = true
        }))
      )
      return HttpServerResponse.empty()
    })

    return { protocol, httpEffect } as const
  })
