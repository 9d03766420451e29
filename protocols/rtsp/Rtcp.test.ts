import { assert, describe, it } from "@effect/vitest"
import { RtcpPacketType, senderReport, senderReportUnixTimeMs } from "./Rtcp.ts"

describe("Rtcp.senderReport", () => {
  it("builds an SR with the NTP/RTP mapping and counts, followed by SDES CNAME", () => {
    const unixTimeMs = 1_700_000_000_123.5
    const packet = senderReport({
      ssrc: 0xcafebabe,
      unixTimeMs,
      rtpTimestamp: 0x11223344,
      packetCount: 1234,
      octetCount: 987654,
      cname: "vms-simulator@127.0.0.1"
    })
    assert.strictEqual(packet.length % 4, 0)
    assert.strictEqual(packet[0], 0x80)
    assert.strictEqual(packet[1], RtcpPacketType.SenderReport)
    assert.strictEqual((packet.readUInt16BE(2) + 1) * 4, 28)
    assert.strictEqual(packet.readUInt32BE(4), 0xcafebabe)
    assert.approximately(senderReportUnixTimeMs(packet), unixTimeMs, 0.001)
    assert.strictEqual(packet.readUInt32BE(16), 0x11223344)
    assert.strictEqual(packet.readUInt32BE(20), 1234)
    assert.strictEqual(packet.readUInt32BE(24), 987654)
    const sdes = packet.subarray(28)
    assert.strictEqual(sdes[0], 0x81)
    assert.strictEqual(sdes[1], RtcpPacketType.SourceDescription)
    assert.strictEqual((sdes.readUInt16BE(2) + 1) * 4, sdes.length)
    assert.strictEqual(sdes.readUInt32BE(4), 0xcafebabe)
    assert.strictEqual(sdes[8], 1)
    assert.strictEqual(sdes.toString("utf8", 10, 10 + sdes[9]!), "vms-simulator@127.0.0.1")
  })
})
