/**
 * A minimal RTSP client over one TCP connection for tests that need to see
 * the wire: sends requests and matches responses in order, and records every
 * interleaved packet (channel, payload, arrival time) the server sends.
 */
import * as Net from "node:net"
import { Effect, Schema } from "effect"
import { formatRequest, type InterleavedFrame, RtspMessageReader, type RtspResponse } from "../RtspMessage.ts"

export class RawClientError extends Schema.TaggedError<RawClientError>()("RawClientError", {
  reason: Schema.String
}) {}

export interface ReceivedPacket {
  readonly channel: number
  readonly payload: Buffer
  readonly atMs: number
}

export class RawRtspClient {
  readonly socket: Net.Socket
  readonly packets: Array<ReceivedPacket> = []
  bytesReceived = 0
  lastDataAtMs = 0
  closed = false
  private readonly reader = new RtspMessageReader()
  private readonly waiting: Array<{
    resolve: (response: RtspResponse) => void
    reject: (error: Error) => void
  }> = []
  private cseq = 0

  private constructor(socket: Net.Socket) {
    this.socket = socket
    socket.on("data", (chunk: Buffer) => {
      this.bytesReceived += chunk.length
      this.lastDataAtMs = Date.now()
      for (const message of this.reader.push(chunk)) {
        if (message._tag === "Response") this.waiting.shift()?.resolve(message)
        else if (message._tag === "Interleaved") this.record(message)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      this.closed = true
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error("connection closed"))
    })
  }

  private record(frame: InterleavedFrame): void {
    this.packets.push({ channel: frame.channel, payload: Buffer.from(frame.payload), atMs: Date.now() })
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawRtspClient> {
    return new Promise((resolve, reject) => {
      const socket = Net.connect({ port, host }, () => {
        socket.removeListener("error", reject)
        resolve(new RawRtspClient(socket))
      })
      socket.once("error", reject)
    })
  }

  request(method: string, url: string, headers: ReadonlyArray<readonly [string, string]> = []): Promise<RtspResponse> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error("connection closed"))
      this.waiting.push({ resolve, reject })
      this.socket.write(formatRequest(method, url, [["CSeq", `${++this.cseq}`], ...headers]))
    })
  }

  /** Writes raw bytes (for pipelining and interleaved-frame tests). */
  write(data: string | Buffer): void {
    this.socket.write(data)
  }

  /** Expects `count` responses to requests written with `write`. */
  responses(count: number): Promise<Array<RtspResponse>> {
    return Promise.all(Array.from({ length: count }, () =>
      new Promise<RtspResponse>((resolve, reject) => this.waiting.push({ resolve, reject }))))
  }

  close(): void {
    this.socket.destroy()
  }
}

/** A connected client, closed with the scope. */
export const connectRaw = (port: number) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => RawRtspClient.connect(port),
      catch: (cause) => new RawClientError({ reason: String(cause) })
    }),
    (client) => Effect.sync(() => client.close())
  )

/**
 * Sends a request and waits (at most 10 s) for its response. Responses are
 * matched in order, so after a request that is never answered the connection
 * cannot be used for further requests.
 */
export const send = (
  client: RawRtspClient,
  method: string,
  url: string,
  headers: ReadonlyArray<readonly [string, string]> = []
) =>
  Effect.tryPromise({
    try: () => client.request(method, url, headers),
    catch: (cause) => new RawClientError({ reason: `${method} ${url}: ${String(cause)}` })
  }).pipe(
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.fail(new RawClientError({ reason: `${method} ${url}: no response within 10 s` }))
    })
  )

/** DESCRIBE, SETUP (TCP interleaved 0-1) and PLAY; returns the session id and PLAY response. */
export const playTcp = (client: RawRtspClient, url: string) =>
  Effect.gen(function*() {
    const describe = yield* send(client, "DESCRIBE", url, [["Accept", "application/sdp"]])
    if (describe.status !== 200) return yield* new RawClientError({ reason: `DESCRIBE answered ${describe.status}` })
    const setup = yield* send(client, "SETUP", `${url}/trackID=0`, [["Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"]])
    if (setup.status !== 200) return yield* new RawClientError({ reason: `SETUP answered ${setup.status}` })
    const session = setup.headers["session"]!.split(";")[0]!
    const play = yield* send(client, "PLAY", url, [["Session", session], ["Range", "npt=0.000-"]])
    if (play.status !== 200) return yield* new RawClientError({ reason: `PLAY answered ${play.status}` })
    return { session, describe, setup, play }
  })
