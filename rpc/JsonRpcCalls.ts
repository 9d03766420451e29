/**
 * What a `/ws` client sends, checked against the JSON-RPC 2.0
 * specification before anything runs: -32700 parse, -32600 invalid
 * request, -32601 method not found, -32602 invalid params, each with `id`
 * as the specification says. Only valid calls reach the server, under an id
 * of our own (a client's ids never key the server's requests, so two calls
 * with the same id do not collide); a batch is counted here and answered
 * with one array once all its calls are done (`JsonRpcConnection.ts`).
 *
 * The `authenticate` call (`{ "token" }` or `{ "apiKey" }`, for browsers,
 * which cannot set WebSocket headers) is answered here: its credentials
 * replace the connection's and go with every later call of the connection.
 */
import { Effect, Exit, type Schema } from "effect"
import type { RequestEncoded } from "effect/rpc/RpcMessage"
import { answer, type Batch, type Connection, flush, writeJson } from "./JsonRpcConnection.ts"
import { codes, describe, errorResponse, isId, isObject, type JsonRpcId, response } from "./JsonRpcMessages.ts"
import { domainErrorCodes } from "./VmsRpcs.ts"

/** Frames above this are refused (-32600) without being parsed. */
export const maxFrameBytes = 64 * 1024

/** Checks credentials given in an `authenticate` call; answers what the client may learn about itself. */
export type Authenticate = (
  headers: ReadonlyArray<[string, string]>
) => Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>

export interface CallsOptions {
  /** Each method's payload decoder, by method name. */
  readonly decoders: ReadonlyMap<string, (input: unknown) => Exit.Exit<unknown, Schema.SchemaError>>
  readonly authenticate?: Authenticate | undefined
  /** Hands a request to the `RpcServer`. */
  readonly writeRequest: (clientId: number, message: RequestEncoded) => Effect.Effect<void>
}

/** Answers `onFrame`: handles one frame a connection received. */
export const makeCalls = (options: CallsOptions) => {
  const { decoders, writeRequest } = options
  let nextRequestId = 0

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

  return { onFrame } as const
}
