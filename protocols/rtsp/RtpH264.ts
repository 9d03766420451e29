/**
 * RTP payload format for H.264 (RFC 6184), packetization mode 1: single NAL
 * unit packets for NAL units that fit the MTU, FU-A fragments for larger ones,
 * the marker bit on the last packet of each access unit.
 *
 * A clip is packetized once into `RtpFrame` templates: every packet already
 * sits in one contiguous buffer behind a 4-byte interleaved prefix and a
 * 12-byte RTP header, so serving a client only copies the template and
 * patches channel, sequence number, timestamp and SSRC (`RtpFrame.stamp`).
 */
import { type AccessUnit, NalType, nalType } from "./H264.ts"

export const RtpHeaderSize = 12
/** `$`, channel, 16-bit length (RFC 2326 10.12). */
export const InterleavedPrefixSize = 4
export const H264PayloadType = 96
export const VideoClockRate = 90_000
/** Largest RTP packet (header + payload) we emit; fits a 1500-byte Ethernet MTU with IP/UDP headers. */
export const DefaultMaxPacketSize = 1400

export interface RtpPayload {
  readonly payload: Uint8Array
  readonly marker: boolean
}

/** Packetizes one access unit into RTP payloads (no headers). */
export const packetizeAccessUnit = (
  unit: AccessUnit,
  maxPacketSize: number = DefaultMaxPacketSize
): Array<RtpPayload> => {
  const maxPayload = maxPacketSize - RtpHeaderSize
  const payloads: Array<Uint8Array> = []
  for (const nal of unit.nalUnits) {
    if (nal.length <= maxPayload) {
      payloads.push(nal)
      continue
    }
    const indicator = (nal[0]! & 0xe0) | NalType.FuA
    const type = nal[0]! & 0x1f
    const chunk = maxPayload - 2
    for (let offset = 1; offset < nal.length; offset += chunk) {
      const end = Math.min(offset + chunk, nal.length)
      const fragment = new Uint8Array(2 + end - offset)
      fragment[0] = indicator
      fragment[1] = (offset === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type
      fragment.set(nal.subarray(offset, end), 2)
      payloads.push(fragment)
    }
  }
  return payloads.map((payload, i) => ({ payload, marker: i === payloads.length - 1 }))
}

/**
 * Reassembles NAL units from RTP payloads (single NAL unit, STAP-A, FU-A).
 * Fragments of an FU-A that lose their start are discarded.
 */
export const depacketize = (payloads: Iterable<Uint8Array>): Array<Uint8Array> => {
  const nals: Array<Uint8Array> = []
  let fragments: Array<Uint8Array> | undefined
  for (const payload of payloads) {
    const type = nalType(payload)
    if (type === NalType.FuA) {
      const header = payload[1]!
      if ((header & 0x80) !== 0) fragments = [Uint8Array.of((payload[0]! & 0xe0) | (header & 0x1f))]
      if (fragments === undefined) continue
      fragments.push(payload.subarray(2))
      if ((header & 0x40) !== 0) {
        nals.push(Buffer.concat(fragments))
        fragments = undefined
      }
    } else if (type === NalType.StapA) {
      for (let offset = 1; offset + 2 <= payload.length;) {
        const size = (payload[offset]! << 8) | payload[offset + 1]!
        nals.push(payload.subarray(offset + 2, offset + 2 + size))
        offset += 2 + size
      }
    } else {
      nals.push(payload)
    }
  }
  return nals
}

/** One access unit as ready-to-stamp RTP packets. */
export class RtpFrame {
  readonly keyframe: boolean
  /** Every packet as `$ ch len` + RTP header + payload, back to back. */
  readonly template: Buffer
  /** Offset of each packet's RTP header inside `template`. */
  readonly headerOffsets: Uint32Array
  /** Length of each RTP packet (header + payload). */
  readonly packetLengths: Uint32Array
  /** Sum of payload sizes: the RTCP sender octet count contribution. */
  readonly payloadOctets: number

  constructor(unit: AccessUnit, maxPacketSize: number = DefaultMaxPacketSize) {
    const payloads = packetizeAccessUnit(unit, maxPacketSize)
    const total = payloads.reduce(
      (sum, { payload }) => sum + InterleavedPrefixSize + RtpHeaderSize + payload.length,
      0
    )
    this.keyframe = unit.keyframe
    this.template = Buffer.alloc(total)
    this.headerOffsets = new Uint32Array(payloads.length)
    this.packetLengths = new Uint32Array(payloads.length)
    let offset = 0
    let octets = 0
    payloads.forEach(({ marker, payload }, i) => {
      const packetLength = RtpHeaderSize + payload.length
      this.template[offset] = 0x24
      this.template.writeUInt16BE(packetLength, offset + 2)
      const header = offset + InterleavedPrefixSize
      this.template[header] = 0x80 // V=2, no padding, no extension, no CSRC
      this.template[header + 1] = (marker ? 0x80 : 0) | H264PayloadType
      this.template.set(payload, header + RtpHeaderSize)
      this.headerOffsets[i] = header
      this.packetLengths[i] = packetLength
      offset = header + packetLength
      octets += payload.length
    })
    this.payloadOctets = octets
  }

  get packetCount(): number {
    return this.headerOffsets.length
  }

  /**
   * Copies the template and writes channel, sequence numbers (starting at
   * `firstSeq`, wrapping at 16 bits), timestamp and SSRC into the copy. The
   * copy goes into `into` when it is large enough (a reusable scratch buffer),
   * else into a new buffer.
   */
  stamp(channel: number, firstSeq: number, timestamp: number, ssrc: number, into?: Buffer): Buffer {
    const length = this.template.length
    const out = into !== undefined && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length)
    this.template.copy(out)
    const offsets = this.headerOffsets
    let seq = firstSeq
    for (let i = 0; i < offsets.length; i++) {
      const header = offsets[i]!
      out[header - 3] = channel
      out[header + 2] = (seq >>> 8) & 0xff
      out[header + 3] = seq & 0xff
      out.writeUInt32BE(timestamp, header + 4)
      out.writeUInt32BE(ssrc, header + 8)
      seq = (seq + 1) & 0xffff
    }
    return out
  }
}
