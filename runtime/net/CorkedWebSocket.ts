/**
 * A `ws` WebSocket whose frames sent in one turn of the event loop leave in
 * one write: `send` corks the TCP socket and the end of the turn
 * (`process.nextTick`) uncorks it, so sixty-four answers produced by one
 * batch of requests cost one write instead of sixty-four syscalls (on this
 * VM a loopback send costs 15-30 µs). Each frame stays a frame of its own;
 * only the TCP writes are gathered, and nothing waits past the current turn.
 *
 * `sendFrame` is the fan-out's path (one notification to a thousand
 * sockets): the server's text frame is built once (`textFrame`) and the same
 * buffer is written to every socket with one `write` each, skipping ws's
 * per-send framing (options object, header buffer, two-chunk `writev`) and a
 * buffer per socket. Its first frame of a turn leaves at once (the next
 * socket's write is next; a client should not wait for the loop's end), a
 * second one corks. It takes that path only where ws itself would write at
 * once and unchanged (a server connection, no compression negotiated,
 * nothing queued in ws's sender), and goes through `send` otherwise.
 *
 * The node's HTTP server builds its WebSocket connections with it
 * (`runtime/http/HttpServer.ts`), and `CorkedWebSocket.onTcpSocket` finds the
 * connection an upgraded request's TCP socket became; clients get it through
 * `layerWebSocketConstructor` (the typed client in `rpc/Client.ts`).
 */
import { Layer } from "effect"
import { Socket } from "effect/socket"
import type * as net from "node:net"
import WebSocket from "ws"

/** ws's internals that `sendText` checks (ws 8.x): its sender's state and queue, the negotiated extensions. */
interface WsInternals {
  readonly _socket?: net.Socket
  readonly _isServer: boolean
  readonly _extensions: Record<string, unknown>
  readonly _sender: { readonly _state: number; readonly _queue: ReadonlyArray<unknown> } | null
}

/** A server's text frame (FIN, unmasked), built once to be sent to many connections. */
export interface TextFrame {
  /** The whole frame: header and payload. */
  readonly frame: Buffer
  /** The UTF-8 payload (a view into `frame`). */
  readonly payload: Buffer
}

/** RFC 6455 §5.2: FIN + text opcode, no mask, 7-, 16- or 64-bit payload length. */
export const textFrame = (text: string): TextFrame => {
  const length = Buffer.byteLength(text)
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10
  const frame = Buffer.allocUnsafe(header + length)
  frame[0] = 0x81
  if (header === 2) {
    frame[1] = length
  } else if (header === 4) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  frame.write(text, header)
  return { frame, payload: frame.subarray(header) }
}

const byTcpSocket = new WeakMap<net.Socket, CorkedWebSocket>()
/** The open connections each HTTP server accepted, for its shutdown. */
const openByServer = new WeakMap<net.Server, Set<CorkedWebSocket>>()

export class CorkedWebSocket extends WebSocket {
  /** The connection `socket` (an upgraded request's TCP socket) became, once ws has taken it over. */
  static onTcpSocket(socket: net.Socket): CorkedWebSocket | undefined {
    return byTcpSocket.get(socket)
  }

  /** 0: nothing sent this turn; 1: one frame sent at once (`sendFrame`); 2: corked until the turn ends. */
  #turn: 0 | 1 | 2 = 0

  // ws hands a connection its TCP socket here (`setSocket`, not in ws's typings).
  setSocket(socket: net.Socket, head: Buffer, options: unknown): void {
    ;(WebSocket.prototype as unknown as { setSocket: (...args: Array<unknown>) => void }).setSocket.call(this, socket, head, options)
    byTcpSocket.set(socket, this)
    // Node sets `server` on the sockets a net.Server accepts.
    const server = (socket as net.Socket & { readonly server?: net.Server }).server
    if (!(this as unknown as WsInternals)._isServer || server === undefined) return
    let open = openByServer.get(server)
    if (open === undefined) openByServer.set(server, open = new Set())
    open.add(this)
    this.once("close", () => open.delete(this))
  }

  /**
   * Closes every WebSocket connection `server` accepted, as a server that
   * stops: close code 1001 (going away), then the TCP connection is cut for
   * those that did not answer within `graceMs`. Without it a node with a
   * browser or client connected took 20 s to stop: Node's `server.close`
   * waits for every connection, upgraded ones too, and effect's HTTP server
   * gives that 20 s before it ends the WebSocket handlers.
   */
  static closeAll(server: net.Server, graceMs: number): Promise<void> {
    const open = [...(openByServer.get(server) ?? [])]
    if (open.length === 0) return Promise.resolve()
    return new Promise((resolve) => {
      let left = open.length
      const timer = setTimeout(() => {
        for (const ws of open) if (ws.readyState !== WebSocket.CLOSED) ws.terminate()
        resolve()
      }, graceMs)
      for (const ws of open) {
        ws.once("close", () => {
          if (--left > 0) return
          clearTimeout(timer)
          resolve()
        })
        ws.close(1001, "server stopping")
      }
    })
  }

  /**
   * Sends a text frame built by `textFrame`, as one TCP write. Dropped when
   * the connection is not open (as `send` would, minus the callback).
   */
  sendFrame(text: TextFrame): void {
    if (this.readyState !== WebSocket.OPEN) return
    const ws = this as unknown as WsInternals
    const socket = ws._socket
    const sender = ws._sender
    if (
      socket === undefined || sender === null || !ws._isServer || sender._state !== 0 || sender._queue.length > 0 ||
      Object.keys(ws._extensions).length > 0
    ) {
      this.send(text.payload, { binary: false })
      return
    }
    this.#beforeWrite(false)
    socket.write(text.frame)
  }

  // Both of ws's `send` overloads: (data, cb?) and (data, options, cb?).
  override send(data: Parameters<WebSocket["send"]>[0], optionsOrCallback?: any, callback?: any): void {
    this.#beforeWrite(true)
    super.send(data, optionsOrCallback, callback)
  }

  #beforeWrite(corkFirst: boolean) {
    if (this.#turn === 0) {
      this.#turn = 1
      process.nextTick(() => this.#endTurn())
      // A lone notification of a fan-out leaves at once.
      if (!corkFirst) return
    }
    if (this.#turn === 1 && this.readyState === WebSocket.OPEN) {
      // `_socket` is where ws keeps the connection's TCP socket.
      const socket = (this as unknown as { readonly _socket?: net.Socket })._socket
      if (socket !== undefined && !socket.destroyed) {
        this.#turn = 2
        socket.cork()
      }
    }
  }

  #endTurn() {
    if (this.#turn === 2) {
      const socket = (this as unknown as { readonly _socket?: net.Socket })._socket
      socket?.uncork()
    }
    this.#turn = 0
  }
}

/** `Socket.WebSocketConstructor` for clients: handshake headers and subprotocols, corked sends. */
export const layerWebSocketConstructor = Layer.succeed(Socket.WebSocketConstructor)((url, options) => {
  if (options === undefined || typeof options === "string" || Array.isArray(options)) {
    return new CorkedWebSocket(url, options) as unknown as globalThis.WebSocket
  }
  return new CorkedWebSocket(url, options.protocols, { headers: options.headers }) as unknown as globalThis.WebSocket
})
