import * as Dgram from "node:dgram"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { RtcpPacketType } from "./Rtcp.ts"
import { parseSpropParameterSets } from "./Sdp.ts"
import { until } from "../../test/support/Eventually.ts"
import { pull } from "./testing/FfmpegPull.ts"
import { connectRaw, playTcp, RawRtspClient, send } from "./testing/RawRtspClient.ts"
import { ffmpegPath, loadSharedClip } from "./testing/SharedClip.ts"
import { startTestSimulator } from "./testing/TestSimulator.ts"

const live = <A, E>(effect: Effect.Effect<A, E, any>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeServices.layer)) as Effect.Effect<A, E>

/** RTP packets of channel 0 grouped into frames by the marker bit. */
const rtpFrames = (client: RawRtspClient) => {
  const frames: Array<{ seqs: Array<number>; timestamp: number; firstNalType: number; atMs: number }> = []
  let current: (typeof frames)[number] | undefined
  for (const packet of client.packets) {
    if (packet.channel !== 0) continue
    const payload = packet.payload
    if (current === undefined) {
      current = { seqs: [], timestamp: payload.readUInt32BE(4), firstNalType: payload[12]! & 0x1f, atMs: packet.atMs }
    }
    current.seqs.push(payload.readUInt16BE(2))
    if ((payload[1]! & 0x80) !== 0) {
      frames.push(current)
      current = undefined
    }
  }
  return frames
}

describe("Simulator RTSP", () => {
  it.live("answers OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN and streams paced, keyframe-first RTP with SRs", () =>
    live(Effect.gen(function*() {
      const clip = yield* loadSharedClip
      const simulator = yield* startTestSimulator({ cameras: 2, senderReportIntervalSeconds: 1 })
      const client = yield* connectRaw(simulator.port)
      const url = simulator.url(1)

      const options = yield* send(client, "OPTIONS", url)
      assert.strictEqual(options.status, 200)
      assert.strictEqual(options.headers["cseq"], "1")
      for (const method of ["DESCRIBE", "SETUP", "PLAY", "TEARDOWN", "GET_PARAMETER"]) {
        assert.include(options.headers["public"], method)
      }
      assert.strictEqual((yield* send(client, "DESCRIBE", simulator.url(2))).status, 404)
      assert.strictEqual((yield* send(client, "PLAY", url, [["Session", "nope"]])).status, 454)

      const { describe, play, session, setup } = yield* playTcp(client, url)
      assert.strictEqual(describe.headers["content-type"], "application/sdp")
      assert.strictEqual(describe.headers["content-base"], `${url}/`)
      const [sps, pps] = parseSpropParameterSets(describe.body.toString())
      assert.deepStrictEqual(Buffer.from(sps!), Buffer.from(clip.sps))
      assert.deepStrictEqual(Buffer.from(pps!), Buffer.from(clip.pps))
      assert.match(setup.headers["transport"]!, /^RTP\/AVP\/TCP;unicast;interleaved=0-1;ssrc=[0-9A-F]{8}$/)
      assert.match(setup.headers["session"]!, /^[0-9A-F]{16};timeout=60$/)
      const rtpInfo = /seq=(\d+);rtptime=(\d+)/.exec(play.headers["rtp-info"]!)!
      assert.include(play.headers["rtp-info"], `url=${url}/trackID=0`)

      yield* until("40 frames", () => rtpFrames(client).length >= 40)
      const frames = rtpFrames(client)
      const ssrc = client.packets.find((p) => p.channel === 0)!.payload.readUInt32BE(8)
      assert.strictEqual(ssrc.toString(16).toUpperCase().padStart(8, "0"), setup.headers["transport"]!.slice(-8))
      assert.strictEqual(frames[0]!.seqs[0], Number(rtpInfo[1]), "first seq = RTP-Info seq")
      assert.strictEqual(frames[0]!.timestamp, Number(rtpInfo[2]), "first timestamp = RTP-Info rtptime")
      assert.strictEqual(frames[0]!.firstNalType, 7, "starts with SPS of a keyframe")
      const allSeqs = frames.flatMap((frame) => frame.seqs)
      allSeqs.forEach((seq, i) => i > 0 && assert.strictEqual(seq, (allSeqs[i - 1]! + 1) & 0xffff))
      frames.forEach((frame, i) =>
        i > 0 && assert.strictEqual((frame.timestamp - frames[i - 1]!.timestamp) >>> 0, 6000))
      const keyframes = frames.filter((frame) => frame.firstNalType === 7).length
      assert.isAtLeast(keyframes, 2)
      // Real-time pacing: 30 frame intervals take 2 s at 15 fps.
      const span = frames[38]!.atMs - frames[8]!.atMs
      assert.isTrue(span > 1800 && span < 2200, `30 frames took ${span} ms`)

      yield* until("a sender report", () => client.packets.some((p) => p.channel === 1))
      const report = client.packets.find((p) => p.channel === 1)!.payload
      assert.strictEqual(report[1], RtcpPacketType.SenderReport)
      assert.strictEqual(report.readUInt32BE(4), ssrc)
      assert.isAtLeast(report.readUInt32BE(20), 1, "packet count")

      // Receiver reports interleaved by the client are skipped, keep-alives answered.
      client.write(Buffer.from([0x24, 1, 0, 8, 0x81, 201, 0, 1, 0, 0, 0, 1]))
      const keepAlive = yield* send(client, "GET_PARAMETER", url, [["Session", session]])
      assert.strictEqual(keepAlive.status, 200)
      assert.strictEqual(keepAlive.headers["session"], session)

      const teardown = yield* send(client, "TEARDOWN", url, [["Session", session]])
      assert.strictEqual(teardown.status, 200)
      const stats = yield* simulator.stats
      assert.strictEqual(stats.sessions, 0)
      assert.strictEqual(stats.mounts[1]!.playing, 0)
      assert.isFalse(client.closed)
    })))

  it.live("answers pipelined requests in order", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const client = yield* connectRaw(simulator.port)
      const url = simulator.url(0)
      const responses = Effect.promise(() => client.responses(3))
      client.write(
        `OPTIONS ${url} RTSP/1.0\r\nCSeq: 7\r\n\r\n` +
          `DESCRIBE ${url} RTSP/1.0\r\nCSeq: 8\r\n\r\nGET_PARAMETER ${url} RTSP/1.0\r\nCSeq: 9\r\n\r\n`
      )
      const [a, b, c] = yield* responses
      assert.deepStrictEqual([a!.headers["cseq"], b!.headers["cseq"], c!.headers["cseq"]], ["7", "8", "9"])
      assert.deepStrictEqual([a!.status, b!.status, c!.status], [200, 200, 200])
      assert.include(b!.body.toString(), "m=video 0 RTP/AVP 96")
    })))

  it.live("accepts 300 simultaneous connections and answers every OPTIONS", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 10 })
      const statuses = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 300 }, async (_, i) => {
          const client = await RawRtspClient.connect(simulator.port)
          try {
            return (await client.request("OPTIONS", simulator.url(i % 10))).status
          } finally {
            client.close()
          }
        }))
      )
      assert.strictEqual(statuses.filter((status) => status === 200).length, 300)
      assert.isAtLeast((yield* simulator.stats).connectionsAccepted, 300)
    })))

  it.live("serves many decoding clients on one mount", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const results = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) =>
          Effect.sleep(i * 100).pipe(Effect.andThen(pull({
            url: simulator.url(0),
            transport: "tcp",
            seconds: 5,
            mode: "decode",
            ffmpegPath,
            socketTimeoutMicros: 5_000_000
          }))),
        { concurrency: "unbounded" }
      )
      for (const result of results) {
        assert.strictEqual(result.exitCode, 0, result.stderr)
        assert.deepStrictEqual(result.problems, [])
        assert.isAtLeast(result.outTimeSeconds, 4.9)
        assert.isTrue(Math.abs(result.fps - 15) <= 1, `fps ${result.fps}`)
      }
    })))

  it.live("streams over UDP to several ffmpeg clients", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 3 })
      const results = yield* Effect.forEach([0, 1, 2], (i) =>
        pull({
          url: simulator.url(i),
          transport: "udp",
          seconds: 5.5,
          mode: "decode",
          ffmpegPath,
          socketTimeoutMicros: 5_000_000
        }), { concurrency: "unbounded" })
      for (const result of results) {
        assert.strictEqual(result.exitCode, 0, result.stderr)
        assert.deepStrictEqual(result.problems, [])
        assert.isAtLeast(result.outTimeSeconds, 5)
        assert.isTrue(Math.abs(result.fps - 15) <= 1, `fps ${result.fps}`)
      }
    })))

  it.live("ends a UDP session whose client sends nothing for the session timeout, not one sending RTCP", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 2, sessionTimeoutSeconds: 2 })
      const openUdpClient = (mount: number, reportEveryMs: number | undefined) =>
        Effect.gen(function*() {
          const rtp = yield* Effect.acquireRelease(
            Effect.promise(() => bindUdp()),
            (socket) => Effect.sync(() => socket.close())
          )
          let received = 0
          rtp.on("message", () => received++)
          const rtpPort = rtp.address().port
          const client = yield* connectRaw(simulator.port)
          const url = simulator.url(mount)
          yield* send(client, "DESCRIBE", url)
          const setup = yield* send(client, "SETUP", `${url}/trackID=0`, [
            ["Transport", `RTP/AVP;unicast;client_port=${rtpPort}-${rtpPort + 1}`]
          ])
          assert.strictEqual(setup.status, 200)
          assert.include(setup.headers["transport"], `server_port=${simulator.rtpPorts[0]}-${simulator.rtpPorts[1]}`)
          const session = setup.headers["session"]!.split(";")[0]!
          assert.strictEqual((yield* send(client, "PLAY", url, [["Session", session]])).status, 200)
          if (reportEveryMs !== undefined) {
            // Receiver reports from the client's RTP port keep the session alive.
            const timer = setInterval(() => rtp.send(Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]),
              simulator.rtpPorts[1], "127.0.0.1"), reportEveryMs)
            yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
          }
          return { received: () => received }
        })
      const silent = yield* openUdpClient(0, undefined)
      const reporting = yield* openUdpClient(1, 300)
      yield* until("UDP packets on both", () => silent.received() > 10 && reporting.received() > 10)
      yield* until("the silent session expires", () => Effect.runSync(simulator.stats).mounts[0]!.sessions === 0, 8000)
      const stats = yield* simulator.stats
      assert.strictEqual(stats.mounts[1]!.playing, 1, "the reporting session is alive")
      assert.isAtLeast(stats.sessionsExpired, 1)
    })))
})

const bindUdp = async (): Promise<Dgram.Socket> => {
  for (;;) {
    const socket = Dgram.createSocket("udp4")
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve))
    if (socket.address().port % 2 === 0) return socket
    socket.close()
  }
}
