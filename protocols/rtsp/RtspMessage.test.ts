import { assert, describe, it } from "@effect/vitest"
import { formatResponse, type RtspMessage, RtspMessageReader } from "./RtspMessage.ts"
import { formatTransport, parseTransport } from "./RtspTransport.ts"

const requests = (messages: ReadonlyArray<RtspMessage>) =>
  messages.flatMap((m) => m._tag === "Request" ? [`${m.method} ${m.uri} ${m.headers["cseq"]}`] : [])

describe("RtspMessageReader", () => {
  const options = "OPTIONS rtsp://127.0.0.1/cam0 RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: test\r\n\r\n"
  const describeRequest = "DESCRIBE rtsp://127.0.0.1/cam0 RTSP/1.0\r\ncseq: 2\r\nAccept: application/sdp\r\n\r\n"
  const setParameter = "SET_PARAMETER rtsp://127.0.0.1/cam0 RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 11\r\n\r\nfoo: bar\r\n!"
  const rtcp = Buffer.from([0x24, 1, 0, 4, 0x81, 0xc9, 0, 0])

  it("parses pipelined requests with bodies and interleaved frames in one chunk", () => {
    const reader = new RtspMessageReader()
    const messages = reader.push(Buffer.concat([
      Buffer.from(options), rtcp, Buffer.from(describeRequest), Buffer.from(setParameter)
    ]))
    assert.deepStrictEqual(messages.map((m) => m._tag), ["Request", "Interleaved", "Request", "Request"])
    assert.deepStrictEqual(requests(messages), [
      "OPTIONS rtsp://127.0.0.1/cam0 1",
      "DESCRIBE rtsp://127.0.0.1/cam0 2",
      "SET_PARAMETER rtsp://127.0.0.1/cam0 3"
    ])
    const frame = messages[1]!
    assert.isTrue(frame._tag === "Interleaved" && frame.channel === 1 && frame.payload.length === 4)
    const last = messages[3]!
    assert.isTrue(last._tag === "Request" && last.body.toString() === "foo: bar\r\n!")
    assert.isTrue(last._tag === "Request" && last.headers["user-agent"] === undefined)
  })

  it("reassembles the same stream fed one byte at a time", () => {
    const reader = new RtspMessageReader()
    const stream = Buffer.concat([Buffer.from(options), rtcp, Buffer.from(setParameter), Buffer.from(describeRequest)])
    const messages: Array<RtspMessage> = []
    for (const byte of stream) messages.push(...reader.push(Buffer.from([byte])))
    assert.deepStrictEqual(messages.map((m) => m._tag), ["Request", "Interleaved", "Request", "Request"])
    assert.deepStrictEqual(requests(messages), [
      "OPTIONS rtsp://127.0.0.1/cam0 1",
      "SET_PARAMETER rtsp://127.0.0.1/cam0 3",
      "DESCRIBE rtsp://127.0.0.1/cam0 2"
    ])
  })

  it("parses responses, and reports malformed input once", () => {
    const reader = new RtspMessageReader()
    const [response] = reader.push(Buffer.from(formatResponse(200, [["CSeq", "5"], ["Public", "OPTIONS"]], "v=0\r\n")))
    assert.isTrue(response?._tag === "Response" && response.status === 200 && response.reason === "OK")
    assert.isTrue(response?._tag === "Response" && response.headers["cseq"] === "5" && response.body.toString() === "v=0\r\n")
    const bad = new RtspMessageReader()
    assert.deepStrictEqual(bad.push(Buffer.from("HELLO\r\n\r\n")).map((m) => m._tag), ["Malformed"])
    assert.deepStrictEqual(bad.push(Buffer.from(options)), [])
    const huge = new RtspMessageReader()
    assert.deepStrictEqual(huge.push(Buffer.alloc(20_000, 0x41)).map((m) => m._tag), ["Malformed"])
  })
})

describe("RtspTransport", () => {
  it("accepts TCP interleaved and UDP unicast, rejects multicast", () => {
    assert.deepStrictEqual(parseTransport("RTP/AVP/TCP;unicast;interleaved=2-3"), {
      _tag: "Tcp", rtpChannel: 2, rtcpChannel: 3
    })
    assert.deepStrictEqual(parseTransport("RTP/AVP;unicast;client_port=5000-5001"), {
      _tag: "Udp", clientRtpPort: 5000, clientRtcpPort: 5001
    })
    assert.deepStrictEqual(parseTransport("RTP/AVP;multicast, RTP/AVP/UDP;unicast;client_port=6000"), {
      _tag: "Udp", clientRtpPort: 6000, clientRtcpPort: 6001
    })
    assert.isUndefined(parseTransport("RTP/AVP;multicast;port=4000-4001"))
    assert.isUndefined(parseTransport("RTP/AVP;unicast"))
    assert.strictEqual(
      formatTransport({ _tag: "Udp", clientRtpPort: 5000, clientRtcpPort: 5001 }, 0xab, [7000, 7001]),
      "RTP/AVP;unicast;client_port=5000-5001;server_port=7000-7001;ssrc=000000AB"
    )
  })
})
