/**
 * One `/ws` connection's state, and how the server's responses become its
 * JSON-RPC frames. A call's answer goes out alone, or in its batch's one
 * array once every call of the batch is answered (nothing when the batch
 * held only notifications). Domain errors get a code from
 * `domainErrorCodes` and the error's tag and fields in `data`; defects are
 * -32603 without details. A `subscribe` call is answered by its stream's
 * leading `subscribed` item, and its notifications
 * (`{ "jsonrpc": "2.0", "method": "camera_status_update", "params": … }`)
 * come encoded from `EventSubscriptions` through this connection's sink
 * (`JsonRpcSinks`), held back until that answer is sent. Subscription ids
 * are per connection ("1", "2", …).
 */
import { Effect } from "effect"
import type { FromServerEncoded } from "effect/rpc/RpcMessage"
import type { TextFrame } from "../runtime/net/CorkedWebSocket.ts"
import type { EncodedNotification } from "./EventSubscriptions.ts"
import { notificationFrame } from "./JsonRpcSinks.ts"
import { codes, errorResponse, exitError, type JsonRpcId, response } from "./JsonRpcMessages.ts"

/** The answers of one batch, sent together once every call in it is answered. */
export interface Batch {
  remaining: number
  sealed: boolean
  readonly replies: Array<unknown>
}

export interface Pending {
  readonly id: JsonRpcId
  readonly batch: Batch | undefined
  /** A subscription's call is answered by its first item; the rest are notifications. */
  answered: boolean
  /** The subscription's id on this connection, and the node's id for it. */
  subscription: string | undefined
  nodeSubscription: string | undefined
}

export interface Connection {
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

export const writeJson = (connection: Connection, value: unknown) => connection.write(JSON.stringify(value))

/** Sends a call's answer, or adds it to its batch and sends the batch when complete. */
export const answer = (connection: Connection, batch: Batch | undefined, reply: unknown): Effect.Effect<void> => {
  if (batch === undefined) return writeJson(connection, reply)
  batch.replies.push(reply)
  batch.remaining--
  return flush(connection, batch)
}

export const flush = (connection: Connection, batch: Batch): Effect.Effect<void> =>
  batch.sealed && batch.remaining === 0 && batch.replies.length > 0
    ? writeJson(connection, batch.replies.splice(0))
    : Effect.void

/**
 * The connection's sink (`JsonRpcSinks`): writes a notification of an
 * answered subscription now, holds one for a subscription not answered yet
 * in `early`, drops it once the socket stopped reading.
 */
export const notify = (connection: Connection, nodeSubscription: string, encoded: EncodedNotification): void => {
  if (connection.closed) return
  const subscription = connection.subscriptions.get(nodeSubscription)
  if (subscription !== undefined) return connection.sendFrame(notificationFrame(encoded, subscription))
  const waiting = connection.early.get(nodeSubscription)
  if (waiting === undefined) connection.early.set(nodeSubscription, [encoded])
  else if (waiting.length < 1_024) waiting.push(encoded)
}

export const onResponse = (connection: Connection, message: FromServerEncoded): Effect.Effect<void> => {
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
