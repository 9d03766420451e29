/**
 * `/ws`: the `VmsRpcs` group as JSON-RPC 2.0 over WebSocket, for clients in
 * any language. An `RpcServer.Protocol` of our own: Effect's `RpcServer`
 * runs the handlers (payload decoding, concurrency, interruption when the
 * socket closes) and encodes payloads, results and errors with the JSON
 * codec of `RpcSerialization.jsonRpc`; this module owns the wire.
 *
 * Why not `RpcSerialization.layerJsonRpc` as it is (effect 4.1.0): it is
 * JSON-RPC-shaped but not JSON-RPC 2.0. A frame that is not JSON becomes a
 * "Defect" reply whose `id` is -32603; unknown methods and invalid params
 * are defects with `code: 0`; failures carry the whole encoded `Cause` with
 * `code: 0`; non-object batch members are dropped silently and `[]` gets no
 * answer; `jsonrpc: "2.0"` is never checked; a client's ids key the server's
 * requests (two calls with the same id collide); streams are sent as
 * non-standard `{ chunk: true }` messages. So here: every frame is checked
 * against the specification first (-32700 parse, -32600 invalid request,
 * -32601 method not found, -32602 invalid params, each with `id` as the
 * specification says) and only valid calls reach the server, under an id of
 * our own; a batch is answered with one array once all its calls are done
 * (nothing when it held only notifications); domain errors get a code from
 * `domainErrorCodes` and the error's tag and fields in `data`; defects are
 * -32603 without details; a `subscribe` call is answered by its stream's
 * leading `subscribed` item, and its notifications
 * (`{ "jsonrpc": "2.0", "method": "camera_status_update", "params": … }`)
 * come encoded from `EventSubscriptions` through this connection's sink
 * (`JsonRpcSinks`), held back until that answer is sent. Subscription ids
 * are per connection ("1", "2", …).
 *
 * Authentication: credentials in the upgrade request's headers
 * (`Authorization: Bearer …` or `X-API-Key`), or an `authenticate` call with
 * `{ "token" }` or `{ "apiKey" }` (browsers cannot set WebSocket headers);
 * they go with every later call of the connection.
 */
import { Effect, Exit, Queue, Schema, type Scope } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { type Rpc, type RpcGroup, RpcSerialization, RpcServer } from "effect/rpc"
import type { FromServerEncoded } from "effect/rpc/RpcMessage"
import type * as net from "node:net"
import { bodyParseOptions } from "../runtime/cameras/CameraModel.ts"
import { CorkedWebSocket, type TextFrame } from "../runtime/net/CorkedWebSocket.ts"
import type { EncodedNotification } from "./EventSubscriptions.ts"
import type { JsonRpcSinks } from "./JsonRpcSinks.ts"
import { notificationFrame, sinkHeader } from "./JsonRpcSinks.ts"
import { codes, describe, errorResponse, exitError, isId, isObject, type JsonRpcId, response } from "./JsonRpcMessages.ts"
import { domainErrorCodes } from "./VmsRpcs.ts"

/** Frames above this are refused (-32600) without being parsed. */
export const maxFrameBytes = 64 * 1024

/** The answers of one batch, sent together once every call in it is answered. */
interface Batch {
  remaining: number
  sealed: boolean
  readonly replies: Array<unknown>
}

interface Pending {
  readonly id: JsonRpcId
  readonly batch: Batch | undefined
  /** A subscription's call is answered by its first item; the rest are notifications. */
  answered: boolean
  /** The subscription's id on this connection, and the node's id for it. */
  subscription: string | undefined
  nodeSubscription: string | undefined
}

interface Connection {
  readonly write: (frame: string) => Effect.Effect<void>
  /** Writes a notification's frame now (`CorkedWebSocket.sendFrame`). */
  readonly sendFrame: (frame: TextFrame) => void
  /**
   * Subscriptions answered on this connection: the node's id to the id the
   * client was given ("1", "2", … per connection, so the thousand sockets of
   * one event usually share one frame). Notifications for others wait in `early`.
   */
  readonly subscriptions: Map<string, string>
  nextSubscription: number
  readonly early: Map<string, Array<EncodedNotification>>
  /** Sent with every call: the upgrade request's, then the `authenticate` call's credentials. */
  headers: ReadonlyArray<[string, string]>
  readonly pending: Map<number, Pending>
  /** The socket stopped reading: notifications are dropped, not written (a write now would wait for a reopen). */
  closed: boolean
}

/** Checks credentials given in an `authenticate` call; answers what the client may learn about itself. */
export type Authenticate = (
  headers: ReadonlyArray<[string, string]>
) => Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>

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
    let nextRequestId = 0
    let writeRequest!: (clientId: number, message: any) => Effect.Effect<void>

    const decoders = new Map<string, (input: unknown) => Exit.Exit<unknown, Schema.SchemaError>>()
    for (const [tag, rpc] of group.requests) {
      decoders.set(tag, Schema.decodeUnknownExit(codecFor((rpc as unknown as Rpc.AnyWithProps).payloadSchema) as any, bodyParseOptions) as any)
    }

    const writeJson = (connection: Connection, value: unknown) => connection.write(JSON.stringify(value))

    /** Sends a call's answer, or adds it to its batch and sends the batch when complete. */
    const answer = (connection: Connection, batch: Batch | undefined, reply: unknown): Effect.Effect<void> => {
      if (batch === undefined) return writeJson(connection, reply)
      batch.replies.push(reply)
      batch.remaining--
      return flush(connection, batch)
    }

    const flush = (connection: Connection, batch: Batch): Effect.Effect<void> =>
      batch.sealed && batch.remaining === 0 && batch.replies.length > 0
        ? writeJson(connection, batch.replies.splice(0))
        : Effect.void

    const authenticateCall = (connection: Connection, id: JsonRpcId, params: unknown) =>
      Effect.gen(function*() {
        const credentials = isObject(params) ? params : {}
        const header: [string, string] | undefined = typeof credentials.token === "string"
          ? ["authorization", `Bearer ${credentials.token}`]
          : typeof credentials.apiKey === "string"
          ? ["x-api-key", credentials.apiKey]
          : undefined
        if (header === undefined) {
          return errorResponse(id, {
            code: codes.invalidParams,
            message: "params: must be { \"token\": string } or { \"apiKey\": string }",
            data: { issues: [{ field: "params", message: "must have token or apiKey" }] }
          })
        }
        const headers = connection.headers
          .filter(([name]) => name !== "authorization" && name !== "x-api-key")
          .concat([header])
        if (options.authenticate === undefined) {
          connection.headers = headers
          return response(id, { result: {} })
        }
        return yield* options.authenticate(headers).pipe(
          Effect.map((result) => {
            connection.headers = headers
            return response(id, { result })
          }),
          Effect.catch((error) =>
            Effect.succeed(errorResponse(id, {
              code: domainErrorCodes[error._tag] ?? -32000,
              message: error.message,
              data: error
            }))
          )
        )
      })

    /**
     * Checks one call. Answers what to send at once (an error, or nothing for a
     * notification), or registers the call and answers the request to run.
     */
    const admit = (
      clientId: number,
      connection: Connection,
      item: unknown,
      batch: Batch | undefined
    ): { readonly reply?: unknown; readonly run?: Effect.Effect<void>; readonly counts: boolean } => {
      if (!isObject(item)) {
        return { reply: errorResponse(null, { code: codes.invalidRequest, message: "Invalid Request: not an object" }), counts: true }
      }
      const hasId = Object.hasOwn(item, "id")
      const id: JsonRpcId = hasId && isId(item.id) ? item.id : null
      const invalid = (message: string) => ({
        reply: errorResponse(id, { code: codes.invalidRequest, message: `Invalid Request: ${message}` }),
        counts: true
      })
      if (item.jsonrpc !== "2.0") return invalid("jsonrpc must be \"2.0\"")
      if (typeof item.method !== "string") return invalid("method must be a string")
      if (hasId && !isId(item.id)) return invalid("id must be a string, a number or null")
      const isNotification = !hasId
      const method = item.method
      const params = item.params
      if (params !== undefined && !isObject(params)) {
        if (isNotification) return { counts: false }
        return {
          reply: errorResponse(id, {
            code: codes.invalidParams,
            message: "params: must be an object with named fields",
            data: { issues: [{ field: "params", message: "must be an object" }] }
          }),
          counts: true
        }
      }
      if (method === "authenticate") {
        const run = Effect.flatMap(authenticateCall(connection, id, params), (reply) =>
          isNotification ? Effect.void : answer(connection, batch, reply))
        return { run, counts: !isNotification }
      }
      const decode = decoders.get(method)
      if (decode === undefined) {
        if (isNotification) return { counts: false }
        return {
          reply: errorResponse(id, { code: codes.methodNotFound, message: `Method not found: ${method}` }),
          counts: true
        }
      }
      const decoded = decode(params ?? {})
      if (Exit.isFailure(decoded)) {
        if (isNotification) return { counts: false }
        const issues = Exit.findErrorOption(decoded)
        const described = issues._tag === "Some" ? describe(issues.value) : []
        return {
          reply: errorResponse(id, {
            code: codes.invalidParams,
            message: `Invalid params: ${described.map((issue) => `${issue.field}: ${issue.message}`).join("; ")}`,
            data: { issues: described }
          }),
          counts: true
        }
      }
      const requestId = nextRequestId++
      if (!isNotification) {
        connection.pending.set(requestId, { id, batch, answered: false, subscription: undefined, nodeSubscription: undefined })
      }
      const run = writeRequest(clientId, {
        _tag: "Request",
        id: requestId,
        tag: method,
        payload: params ?? {},
        headers: connection.headers,
        ...(isNotification ? { isNotification: true } : {})
      })
      return { run, counts: !isNotification }
    }

    const onFrame = (clientId: number, connection: Connection, frame: string): Effect.Effect<void> => {
      if (frame.length > maxFrameBytes) {
        return writeJson(connection, errorResponse(null, {
          code: codes.invalidRequest,
          message: `Invalid Request: frame larger than ${maxFrameBytes} bytes`
        }))
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(frame)
      } catch {
        return writeJson(connection, errorResponse(null, { code: codes.parseError, message: "Parse error: not JSON" }))
      }
      if (!Array.isArray(parsed)) {
        const admitted = admit(clientId, connection, parsed, undefined)
        if (admitted.run !== undefined) return admitted.run
        return admitted.reply === undefined ? Effect.void : writeJson(connection, admitted.reply)
      }
      if (parsed.length === 0) {
        return writeJson(connection, errorResponse(null, { code: codes.invalidRequest, message: "Invalid Request: empty batch" }))
      }
      // Every member is checked and counted before any runs: a call that
      // answers at once must not complete the batch early.
      const batch: Batch = { remaining: 0, sealed: false, replies: [] }
      const runs: Array<Effect.Effect<void>> = []
      for (const item of parsed) {
        const admitted = admit(clientId, connection, item, batch)
        if (admitted.reply !== undefined) batch.replies.push(admitted.reply)
        else if (admitted.counts) batch.remaining++
        if (admitted.run !== undefined) runs.push(admitted.run)
      }
      batch.sealed = true
      return Effect.andThen(Effect.forEach(runs, (run) => run, { discard: true }), Effect.suspend(() => flush(connection, batch)))
    }

    const onResponse = (connection: Connection, message: FromServerEncoded): Effect.Effect<void> => {
      switch (message._tag) {
        case "Chunk": {
          const pending = connection.pending.get(Number(message.requestId))
          if (pending === undefined) return Effect.void
          return Effect.forEach(message.values, (value: any) => {
            const { _tag, ...fields } = value as { readonly _tag: string }
            if (!pending.answered) {
              pending.answered = true
              const nodeSubscription = typeof value.subscription === "string" ? value.subscription : undefined
              if (nodeSubscription === undefined) return answer(connection, pending.batch, response(pending.id, { result: fields }))
              const subscription = String(++connection.nextSubscription)
              pending.subscription = subscription
              pending.nodeSubscription = nodeSubscription
              const answered = answer(connection, pending.batch, response(pending.id, { result: { ...fields, subscription } }))
              return Effect.andThen(answered, Effect.sync(() => {
                connection.subscriptions.set(nodeSubscription, subscription)
                const waiting = connection.early.get(nodeSubscription)
                if (waiting === undefined) return
                connection.early.delete(nodeSubscription)
                for (const encoded of waiting) connection.sendFrame(notificationFrame(encoded, subscription))
              }))
            }
            const params = pending.subscription === undefined ? fields : { subscription: pending.subscription, ...fields }
            return writeJson(connection, { jsonrpc: "2.0", method: _tag, params })
          }, { discard: true })
        }
        case "Exit": {
          const requestId = Number(message.requestId)
          const pending = connection.pending.get(requestId)
          if (pending === undefined) return Effect.void
          connection.pending.delete(requestId)
          const exit = message.exit as any
          if (pending.answered) {
            if (pending.nodeSubscription !== undefined) connection.subscriptions.delete(pending.nodeSubscription)
            // A subscription ends when its socket closes (an interruption); anything else is worth a line.
            const interrupted = exit._tag === "Failure" && exit.cause.every((reason: any) => reason._tag === "Interrupt")
            return exit._tag === "Failure" && !interrupted
              ? Effect.logWarning("subscription ended", JSON.stringify(exitError(exit)))
              : Effect.void
          }
          const reply = exit._tag === "Success"
            ? response(pending.id, { result: exit.value ?? null })
            : errorResponse(pending.id, exitError(exit))
          const logged = exit._tag === "Failure" && !exit.cause.some((reason: any) => reason._tag === "Fail")
            ? Effect.logError("json-rpc call died", JSON.stringify(exit.cause))
            : Effect.void
          return Effect.andThen(logged, answer(connection, pending.batch, reply))
        }
        case "Defect":
          return Effect.andThen(
            Effect.logError("json-rpc connection defect", JSON.stringify(message.defect)),
            writeJson(connection, errorResponse(null, { code: codes.internalError, message: "internal error" }))
          )
        default:
          return Effect.void
      }
    }

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
          notify: (nodeSubscription, encoded) => {
            if (connection.closed) return
            const subscription = connection.subscriptions.get(nodeSubscription)
            if (subscription !== undefined) return connection.sendFrame(notificationFrame(encoded, subscription))
            const waiting = connection.early.get(nodeSubscription)
            if (waiting === undefined) connection.early.set(nodeSubscription, [encoded])
            else if (waiting.length < 1_024) waiting.push(encoded)
          }
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
