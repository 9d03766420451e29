/**
 * Runner-to-runner connections over NATS subjects, shaped as effect/socket
 * `Socket`s so effect/cluster's own socket runner protocol (framing, pings,
 * reconnects, acks) runs over NATS unchanged. A connection is a pair of
 * subjects under the cluster's namespace:
 *
 * - `<ns>.runner.<runner>.open`     request/reply handshake carrying the connection id
 *                                   (no responders = the runner is gone: fails at once)
 * - `<ns>.runner.<runner>.in.<id>`  frames from the client to the runner
 * - `<ns>.runner.<runner>.close.<id>` the client closed
 * - `<ns>.conn.<id>`                frames from the runner to the client; a message
 *                                   with the `Vms-Close` header closes it
 *
 * NATS keeps the order of one publisher's messages on one subject, which is
 * all a byte stream needs. A server-side connection that hears nothing for
 * `idleTimeout` (the client pings every few seconds) is closed, so clients
 * that died without closing leave nothing behind.
 */
import { headers as natsHeaders, type Msg, type NatsConnection, nuid, type Subscription } from "@nats-io/transport-node"
import { Effect, Fiber, Latch, Scope } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import type { RunnerAddress } from "effect/cluster/RunnerAddress"

export interface NatsSocketOptions {
  readonly connection: NatsConnection
  /** Subject namespace: `VMS_CLUSTER`. */
  readonly namespace: string
  /** How long `open` waits for the runner's answer. */
  readonly openTimeoutMs?: number
}

const closeHeader = "Vms-Close"

/** A subject token for a runner address (`host:port` → `host_port`, anything unsafe → `_`). */
export const runnerToken = (address: RunnerAddress): string =>
  `${address.host}_${address.port}`.replace(/[^A-Za-z0-9_-]/g, "_")

const closeError = (code: number, reason?: string) =>
  new Socket.SocketError({ reason: new Socket.SocketCloseError({ code, closeReason: reason }) })

interface Inbox {
  readonly push: (frame: Uint8Array) => void
  readonly fail: (error: Socket.SocketError) => void
}

/**
 * A reader fed by `register`: frames pushed while nobody pulls are buffered,
 * a failure is delivered after the buffered frames, and closing the reader's
 * scope fails a pull that is waiting (as effect/socket requires).
 */
const makeReader = (
  scope: Scope.Scope,
  attach: (inbox: Inbox) => void,
  onClose: () => void
): Effect.Effect<Socket.Reader<Uint8Array>> =>
  Effect.gen(function*() {
    let buffer: Array<Uint8Array> = []
    let error: Socket.SocketError | undefined
    let waiter: ((effect: Effect.Effect<readonly [Uint8Array, ...Array<Uint8Array>], Socket.SocketError>) => void) | undefined
    const take = () => {
      const frames = buffer as unknown as readonly [Uint8Array, ...Array<Uint8Array>]
      buffer = []
      return frames
    }
    const wake = () => {
      if (waiter === undefined) return
      const resume = waiter
      if (buffer.length > 0) {
        waiter = undefined
        resume(Effect.succeed(take()))
      } else if (error !== undefined) {
        waiter = undefined
        resume(Effect.fail(error))
      }
    }
    const inbox: Inbox = {
      push: (frame) => {
        if (error !== undefined) return
        buffer.push(frame)
        wake()
      },
      fail: (cause) => {
        if (error === undefined) error = cause
        wake()
      }
    }
    attach(inbox)
    yield* Scope.addFinalizer(scope, Effect.sync(() => {
      inbox.fail(closeError(1006))
      onClose()
    }))
    const pull = Effect.callback<readonly [Uint8Array, ...Array<Uint8Array>], Socket.SocketError>((resume) => {
      if (buffer.length > 0) return resume(Effect.succeed(take()))
      if (error !== undefined) return resume(Effect.fail(error))
      waiter = resume
      return Effect.sync(() => {
        if (waiter === resume) waiter = undefined
      })
    })
    return { pull, upgrade: Socket.SocketUpgradeError.unsupported }
  })

const writerOf = (publish: (frame: Uint8Array) => void, close: () => void): Socket.Writer => {
  const encoder = new TextEncoder()
  const write = (chunk: Uint8Array | string | Socket.CloseEvent) =>
    Effect.try({
      try: () => {
        if (Socket.isCloseEvent(chunk)) close()
        else publish(typeof chunk === "string" ? encoder.encode(chunk) : chunk)
      },
      catch: (cause) => new Socket.SocketError({ reason: new Socket.SocketWriteError({ cause }) })
    })
  return {
    write,
    writeAll: (chunks) => Effect.forEach(chunks, write, { discard: true })
  }
}

/**
 * A client socket to the runner at `address`. Each acquisition of its reader
 * opens a new connection (the RPC protocol re-acquires it to reconnect).
 */
export const connect = (options: NatsSocketOptions, address: RunnerAddress): Socket.Socket => {
  const nc = options.connection
  const base = `${options.namespace}.runner.${runnerToken(address)}`
  let current: { readonly id: string; closed: boolean } | undefined
  // Writes wait for an open connection: the RPC protocol writes while it (re)connects.
  const connected = Latch.makeUnsafe(false)
  const publishTo = (subject: string, frame?: Uint8Array) => {
    if (nc.isClosed()) throw new Error("NATS connection closed")
    nc.publish(subject, frame)
  }
  const reader = Effect.gen(function*() {
    const scope = yield* Effect.scope
    const id = nuid.next()
    const connection = { id, closed: false }
    let subscription: Subscription | undefined
    const markClosed = () => {
      connection.closed = true
      if (current === connection) connected.closeUnsafe()
    }
    const sendClose = () => {
      if (connection.closed) return
      markClosed()
      try {
        publishTo(`${base}.close.${id}`)
      } catch {
        // Connection to NATS gone: the runner's idle timeout closes its side.
      }
    }
    const reader = yield* makeReader(scope, (inbox) => {
      subscription = nc.subscribe(`${options.namespace}.conn.${id}`, {
        callback: (error, msg) => {
          if (error !== null) return inbox.fail(new Socket.SocketError({ reason: new Socket.SocketReadError({ cause: error }) }))
          if (msg.headers?.has(closeHeader)) {
            markClosed()
            return inbox.fail(closeError(1000, msg.headers.get(closeHeader)))
          }
          inbox.push(msg.data)
        }
      })
    }, () => {
      sendClose()
      subscription?.unsubscribe()
    })
    // Handshake after subscribing, so no frame of the runner's can be missed.
    yield* Effect.tryPromise({
      try: () => nc.flush().then(() => nc.request(`${base}.open`, id, { timeout: options.openTimeoutMs ?? 1_000 })),
      catch: (cause) =>
        new Socket.SocketError({
          reason: new Socket.SocketOpenError({
            kind: String(cause).includes("Timeout") ? "Timeout" : "Unknown",
            cause
          })
        })
    })
    current = connection
    connected.openUnsafe()
    return reader
  })
  const writer = Effect.succeed<Socket.Writer>({
    write: (chunk) => Socket.isCloseEvent(chunk) ? writeNow(chunk) : Effect.andThen(connected.await, writeNow(chunk)),
    writeAll: (chunks) => Effect.andThen(connected.await, Effect.forEach(chunks, writeNow, { discard: true }))
  })
  const { write: writeNow } = writerOf(
    (frame) => {
      const connection = current
      if (connection === undefined || connection.closed) throw new Error("not connected")
      publishTo(`${base}.in.${connection.id}`, frame)
    },
    () => {
      const connection = current
      if (connection === undefined || connection.closed) return
      connection.closed = true
      connected.closeUnsafe()
      publishTo(`${base}.close.${connection.id}`)
    }
  )
  return Socket.make({ reader, writer })
}

interface ServerConnection {
  readonly inbox: Inbox
  lastFrameAt: number
}

/**
 * The runner's side: a `SocketServer` whose sockets are the connections
 * clients open to `address`.
 */
export const makeServer = (
  options: NatsSocketOptions & { readonly idleTimeoutMs?: number },
  address: RunnerAddress
): Effect.Effect<SocketServer.SocketServer["Service"]> =>
  Effect.gen(function*() {
    const nc = options.connection
    const base = `${options.namespace}.runner.${runnerToken(address)}`
    const idleTimeoutMs = options.idleTimeoutMs ?? 30_000

    const run = <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
      Effect.gen(function*() {
        const context = yield* Effect.context<R>()
        const connections = new Map<string, ServerConnection>()
        const handlers = new Set<Fiber.Fiber<unknown, unknown>>()

        const sendClose = (id: string, reason: string) => {
          const headers = natsHeaders()
          headers.set(closeHeader, reason)
          if (!nc.isClosed()) nc.publish(`${options.namespace}.conn.${id}`, undefined, { headers })
        }

        const accept = (msg: Msg) => {
          const id = msg.string()
          if (!/^[A-Za-z0-9]+$/.test(id) || connections.has(id)) return
          let attached: Inbox | undefined
          const early: Array<Uint8Array> = []
          const connection: ServerConnection = {
            inbox: {
              push: (frame) => attached === undefined ? early.push(frame) : attached.push(frame),
              fail: (error) => attached?.fail(error)
            },
            lastFrameAt: performance.now()
          }
          connections.set(id, connection)
          const reader = Effect.gen(function*() {
            const scope = yield* Effect.scope
            return yield* makeReader(scope, (inbox) => {
              attached = inbox
              for (const frame of early.splice(0)) inbox.push(frame)
            }, () => {
              if (connections.delete(id)) sendClose(id, "closed by runner")
            })
          })
          const writer = Effect.succeed(writerOf(
            (frame) => {
              if (!connections.has(id)) throw new Error("connection closed")
              nc.publish(`${options.namespace}.conn.${id}`, frame)
            },
            () => {
              if (connections.delete(id)) sendClose(id, "closed by runner")
            }
          ))
          const fiber = Effect.runForkWith(context)(handler(Socket.make({ reader, writer })).pipe(
            Effect.ensuring(Effect.sync(() => {
              if (connections.delete(id)) sendClose(id, "handler ended")
            }))
          ))
          handlers.add(fiber)
          fiber.addObserver(() => handlers.delete(fiber))
          msg.respond("ok")
        }

        const subscriptions = [
          nc.subscribe(`${base}.open`, { callback: (error, msg) => { if (error === null) accept(msg) } }),
          nc.subscribe(`${base}.in.*`, {
            callback: (error, msg) => {
              if (error !== null) return
              const id = msg.subject.slice(msg.subject.lastIndexOf(".") + 1)
              const connection = connections.get(id)
              if (connection === undefined) return sendClose(id, "unknown connection")
              connection.lastFrameAt = performance.now()
              connection.inbox.push(msg.data)
            }
          }),
          nc.subscribe(`${base}.close.*`, {
            callback: (error, msg) => {
              if (error !== null) return
              const id = msg.subject.slice(msg.subject.lastIndexOf(".") + 1)
              const connection = connections.get(id)
              if (connection === undefined) return
              connections.delete(id)
              connection.inbox.fail(closeError(1000, "closed by client"))
            }
          })
        ]
        const idleSweep = setInterval(() => {
          const now = performance.now()
          for (const [id, connection] of connections) {
            if (now - connection.lastFrameAt < idleTimeoutMs) continue
            connections.delete(id)
            connection.inbox.fail(closeError(1001, "idle"))
            sendClose(id, "idle")
          }
        }, Math.min(5_000, idleTimeoutMs))
        return yield* Effect.never.pipe(
          Effect.onExit(() =>
            Effect.gen(function*() {
              clearInterval(idleSweep)
              for (const subscription of subscriptions) subscription.unsubscribe()
              for (const [id, connection] of connections) {
                connection.inbox.fail(closeError(1001, "runner stopping"))
                sendClose(id, "runner stopping")
              }
              connections.clear()
              yield* Fiber.interruptAll(handlers)
            })
          )
        )
      })

    return SocketServer.SocketServer.of({
      address: NetAddress.unixPathAddress(`nats:${base}`),
      run: run as SocketServer.SocketServer["Service"]["run"]
    })
  })
