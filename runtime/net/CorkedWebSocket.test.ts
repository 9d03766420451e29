/**
 * CorkedWebSocket over real loopback TCP: frames sent in one turn arrive
 * whole, separate and in order (server to client and client to server),
 * `send` is corked until the turn ends and a lone `sendFrame` is not, and sending after close
 * neither throws nor leaves the socket corked; `sendFrame` frames of every
 * length class arrive as text in order with `send`'s, and the server finds
 * a connection by its TCP socket.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { until } from "../../test/support/Eventually.ts"
import { CorkedWebSocket, textFrame } from "./CorkedWebSocket.ts"

/** A server whose connections are CorkedWebSockets, and a CorkedWebSocket client connected to it. */
const pair = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = new WebSocketServer({ port: 0, host: "127.0.0.1", WebSocket: CorkedWebSocket })
    await new Promise<void>((resolve) => server.once("listening", () => resolve()))
    const accepted = new Promise<CorkedWebSocket>((resolve) => server.once("connection", (ws) => resolve(ws as CorkedWebSocket)))
    const client = new CorkedWebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)
    await new Promise<void>((resolve) => client.once("open", () => resolve()))
    const peer = await accepted
    const fromServer: Array<string> = []
    const fromClient: Array<string> = []
    client.on("message", (data) => fromServer.push(data.toString()))
    peer.on("message", (data) => fromClient.push(data.toString()))
    return { server, client, peer, fromServer, fromClient }
  }),
  ({ client, server }) =>
    Effect.promise(() => {
      client.terminate()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    })
)

describe("CorkedWebSocket", () => {
  it.live("frames sent in one turn arrive whole, separate and in order, both ways", () =>
    Effect.gen(function*() {
      const { client, peer, fromServer, fromClient } = yield* pair
      const frames = Array.from({ length: 200 }, (_, i) => JSON.stringify({ i, pad: "x".repeat(i * 7) }))
      for (const frame of frames) peer.send(frame)
      let written = 0
      for (const frame of frames) client.send(frame, (error?: Error | null) => error == null && written++)
      yield* until("all frames", () => fromServer.length === frames.length && fromClient.length === frames.length, 5_000)
      yield* until("every send called back without an error", () => written === frames.length, 5_000)
      assert.deepStrictEqual(fromServer, frames)
      assert.deepStrictEqual(fromClient, frames)
    }).pipe(Effect.scoped))

  it.live("send corks until the turn ends; a lone sendFrame leaves at once", () =>
    Effect.gen(function*() {
      const { peer, fromServer } = yield* pair
      const socket = (peer as unknown as { _socket: { writableCorked: number } })._socket
      peer.send("first")
      assert.isAbove(socket.writableCorked, 0)
      peer.send("second")
      yield* until("both frames", () => fromServer.length === 2, 5_000)
      assert.strictEqual(socket.writableCorked, 0)
      yield* Effect.sleep("10 millis")
      // Still in the sending turn: a lone frame of a fan-out is not held back.
      peer.sendFrame(textFrame("lone"))
      assert.strictEqual(socket.writableCorked, 0)
      peer.sendFrame(textFrame("next"))
      assert.isAbove(socket.writableCorked, 0)
      yield* until("four frames", () => fromServer.length === 4, 5_000)
      assert.deepStrictEqual(fromServer, ["first", "second", "lone", "next"])
      assert.strictEqual(socket.writableCorked, 0)
    }).pipe(Effect.scoped))

  it.live("sendFrame: a text frame built once, in order with send, at 7-, 16- and 64-bit lengths", () =>
    Effect.gen(function*() {
      const { peer, fromServer } = yield* pair
      const tcp = (peer as unknown as { _socket: import("node:net").Socket })._socket
      assert.strictEqual(CorkedWebSocket.onTcpSocket(tcp), peer)
      const texts = ["short é", "x".repeat(200) + "ü", "y".repeat(70_000), "", "z".repeat(125)]
      peer.send("first")
      for (const text of texts) peer.sendFrame(textFrame(text))
      peer.send("last")
      yield* until("all frames", () => fromServer.length === texts.length + 2, 5_000)
      assert.deepStrictEqual(fromServer, ["first", ...texts, "last"])
    }).pipe(Effect.scoped))

  it.live("sending after close does not throw", () =>
    Effect.gen(function*() {
      const { client, peer } = yield* pair
      client.close()
      yield* until("closed", () => peer.readyState === CorkedWebSocket.CLOSED, 5_000)
      peer.send("late")
      peer.send("later")
      peer.sendFrame(textFrame("latest"))
      yield* Effect.sleep("10 millis")
    }).pipe(Effect.scoped))
})
