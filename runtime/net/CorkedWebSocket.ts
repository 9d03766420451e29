/**
 * A `ws` WebSocket whose frames sent in one turn of the event loop leave in
 * few writes: the first frame of a turn leaves at once, a second one corks
 * the TCP socket, and the end of the turn (`process.nextTick`) uncorks it, so
 * sixty-four answers produced by one batch of requests cost two writes
 * instead of sixty-four syscalls (on a VM a loopback send costs tens of µs).
 * Each frame stays a frame of its own; only the TCP writes are gathered, and
 * nothing waits past the current turn.
 *
 * The node's HTTP server builds its WebSocket connections with it
 * (`runtime/http/HttpServer.ts`); clients get it through
 * `layerWebSocketConstructor` (the typed client in `rpc/Client.ts`).
 */
import { Layer } from "effect"
import { Socket } from "effect/socket"
import type * as net from "node:net"
import WebSocket from "ws"

export class CorkedWebSocket extends WebSocket {
  /** 0: nothing sent this turn; 1: one frame sent (it left at once); 2: corked until the turn ends. */
  #turn: 0 | 1 | 2 = 0

  // Both of ws's `send` overloads: (data, cb?) and (data, options, cb?).
  override send(data: Parameters<WebSocket["send"]>[0], optionsOrCallback?: any, callback?: any): void {
    if (this.#turn === 0) {
      // A lone frame (one notification of a fan-out) leaves at once.
      this.#turn = 1
      process.nextTick(() => this.#endTurn())
    } else if (this.#turn === 1 && this.readyState === WebSocket.OPEN) {
      // `_socket` is where ws keeps the connection's TCP socket.
      const socket = (this as unknown as { readonly _socket?: net.Socket })._socket
      if (socket !== undefined && !socket.destroyed) {
        this.#turn = 2
        socket.cork()
      }
    }
    super.send(data, optionsOrCallback, callback)
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
