import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Mount } from "./Mount.ts"
import { RtcpPacketType } from "./Rtcp.ts"
import { type InterleavedFrame, RtspMessageReader } from "./RtspMessage.ts"
import { RtspSession, type TransmitCounters } from "./RtspSession.ts"
import { until } from "../../test/support/Eventually.ts"
import { loadSharedClip } from "./testing/SharedClip.ts"

/** A connected TCP pair on loopback: the server side and everything the client side receives. */
const socketPair = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ server: Net.Socket; client: Net.Socket; received: Array<InterleavedFrame> }>((resolve) => {
      const listener = Net.createServer((server) => {
        listener.close()
        const reader = new RtspMessageReader()
        const received: Array<InterleavedFrame> = []
        client.on("data", (chunk: Buffer) => {
          for (const message of reader.push(chunk)) if (message._tag === "Interleaved") received.push(message)
        })
        resolve({ server, client, received })
      })
      let client: Net.Socket
      listener.listen(0, "127.0.0.1", () => {
        const address = listener.address() as Net.AddressInfo
        client = Net.connect(address.port, "127.0.0.1")
      })
    })
  ),
  ({ client, server }) => Effect.sync(() => {
    client.destroy()
    server.destroy()
  })
)

const frameStarts = (received: ReadonlyArray<InterleavedFrame>) =>
  received.flatMap((packet, i) => {
    if (packet.channel !== 0) return []
    const previous = received.slice(0, i).reverse().find((p) => p.channel === 0)
    return previous === undefined || (previous.payload[1]! & 0x80) !== 0 ? [packet.payload] : []
  })

describe("RtspSession", () => {
  it.live("starts at a keyframe, drops frames while a TCP client is backed up, resumes at a keyframe", () =>
    Effect.gen(function*() {
      const clip = yield* loadSharedClip
      const { client, received, server } = yield* socketPair
      const counters: TransmitCounters = { packets: 0, bytes: 0, frames: 0, framesDropped: 0 }
      const mount = new Mount(0, 0)
      const session = new RtspSession(
        "S1",
        mount,
        { sessions: new Set() },
        { _tag: "Tcp", rtpChannel: 0, rtcpChannel: 1 },
        { _tag: "Tcp", socket: server, rtpChannel: 0, rtcpChannel: 1 },
        { fps: 15, maxQueuedBytes: 64 * 1024, senderReportIntervalTicks: 15, cname: "test" },
        counters
      )
      const firstTimestamp = session.nextTimestamp
      const firstSeq = session.nextSeq
      let tick = 3
      const send = (ticks: number) => {
        for (const end = tick + ticks; tick < end; tick++) {
          session.sendFrame(clip.frames[tick % clip.frames.length]!, tick, Date.now())
        }
      }
      send(12) // ticks 3..14: no keyframe yet
      assert.strictEqual(counters.frames, 0)
      send(20) // the keyframe at tick 15 starts the stream
      assert.strictEqual(counters.frames, 20)
      yield* until("20 frames received", () => frameStarts(received).length === 20)
      const starts = frameStarts(received)
      assert.strictEqual(starts[0]!.readUInt32BE(4), firstTimestamp)
      assert.strictEqual(starts[0]!.readUInt16BE(2), firstSeq)
      assert.strictEqual(starts[0]![12]! & 0x1f, 7)
      assert.isTrue(received.some((p) => p.channel === 1 && p.payload[1] === RtcpPacketType.SenderReport))

      // A client that does not read: the socket queues until the limit, then frames are dropped.
      server.cork()
      send(30)
      assert.isAbove(counters.framesDropped, 0)
      assert.isBelow(server.writableLength, 64 * 1024 + 40_000, "queue bounded by the limit plus one frame")
      const queuedFrames = counters.frames
      server.uncork()
      yield* until("queue drained", () => server.writableLength === 0)
      send(30)
      assert.isAbove(counters.frames, queuedFrames)
      yield* until("all frames received", () => frameStarts(received).length === counters.frames)

      const all = frameStarts(received)
      const gap = all.findIndex((p, i) => i > 0 && ((p.readUInt32BE(4) - all[i - 1]!.readUInt32BE(4)) >>> 0) !== 6000)
      assert.isAbove(gap, 0, "a timestamp gap where frames were dropped")
      assert.strictEqual(all[gap]![12]! & 0x1f, 7, "resumes with the SPS of a keyframe")
      assert.strictEqual(((all[gap]!.readUInt32BE(4) - all[gap - 1]!.readUInt32BE(4)) >>> 0) % 6000, 0)
      const seqs = received.filter((p) => p.channel === 0).map((p) => p.payload.readUInt16BE(2))
      seqs.forEach((seq, i) => i > 0 && assert.strictEqual(seq, (seqs[i - 1]! + 1) & 0xffff))
      assert.isFalse(client.destroyed)
    }).pipe(Effect.scoped))
})
