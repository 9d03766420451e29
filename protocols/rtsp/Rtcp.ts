/**
 * RTCP (RFC 3550 6.4.1, 6.5) as a sender needs it: compound packets of a
 * sender report (NTP ↔ RTP timestamp mapping, packet and octet counts) and an
 * SDES CNAME item. Incoming receiver reports are only used as a liveness
 * signal, so nothing here parses them.
 */

export const RtcpPacketType = {
  SenderReport: 200,
  ReceiverReport: 201,
  SourceDescription: 202,
  Goodbye: 203
} as const

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NtpUnixOffsetSeconds = 2_208_988_800

export interface SenderReportInput {
  readonly ssrc: number
  /** Wall-clock time the report's RTP timestamp corresponds to. */
  readonly unixTimeMs: number
  readonly rtpTimestamp: number
  readonly packetCount: number
  readonly octetCount: number
  readonly cname: string
}

/** A compound RTCP packet: SR (no report blocks) followed by SDES with one CNAME chunk. */
export const senderReport = (input: SenderReportInput): Buffer => {
  const cname = Buffer.from(input.cname.slice(0, 255), "utf8")
  // SDES chunk: SSRC, CNAME item (type, length, text), END item, padded to 32 bits.
  const chunkLength = Math.ceil((4 + 2 + cname.length + 1) / 4) * 4
  const out = Buffer.alloc(28 + 4 + chunkLength)
  out[0] = 0x80
  out[1] = RtcpPacketType.SenderReport
  out.writeUInt16BE(6, 2)
  out.writeUInt32BE(input.ssrc >>> 0, 4)
  const seconds = Math.floor(input.unixTimeMs / 1000)
  const fraction = Math.floor(((input.unixTimeMs % 1000) / 1000) * 2 ** 32)
  out.writeUInt32BE((seconds + NtpUnixOffsetSeconds) >>> 0, 8)
  out.writeUInt32BE(fraction >>> 0, 12)
  out.writeUInt32BE(input.rtpTimestamp >>> 0, 16)
  out.writeUInt32BE(input.packetCount >>> 0, 20)
  out.writeUInt32BE(input.octetCount >>> 0, 24)
  out[28] = 0x81
  out[29] = RtcpPacketType.SourceDescription
  out.writeUInt16BE(chunkLength / 4, 30)
  out.writeUInt32BE(input.ssrc >>> 0, 32)
  out[36] = 1 // CNAME
  out[37] = cname.length
  cname.copy(out, 38)
  return out
}

/** NTP timestamp of a sender report as Unix milliseconds (for tests and diagnostics). */
export const senderReportUnixTimeMs = (packet: Uint8Array): number => {
  const view = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength)
  return (view.readUInt32BE(8) - NtpUnixOffsetSeconds) * 1000 + (view.readUInt32BE(12) / 2 ** 32) * 1000
}
