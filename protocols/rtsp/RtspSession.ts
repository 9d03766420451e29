/**
 * One client's RTSP session on a mount and its outgoing RTP stream: random
 * SSRC, initial sequence number and timestamp; RTP timestamps derived from the
 * shared frame clock (so they keep rising across clip loops and pauses);
 * keyframe-aligned start; frame dropping instead of unbounded buffering when a
 * TCP client reads too slowly; periodic RTCP sender reports.
 */
import type * as Dgram from "node:dgram"
import type * as Net from "node:net"
import type { Mount } from "./Mount.ts"
import { senderReport } from "./Rtcp.ts"
import { type RtpFrame, VideoClockRate } from "./RtpH264.ts"
import type { RtpTransport } from "./RtspTransport.ts"

export type MediaTarget =
  | {
    readonly _tag: "Tcp"
    readonly socket: Net.Socket
    readonly rtpChannel: number
    readonly rtcpChannel: number
  }
  | {
    readonly _tag: "Udp"
    readonly rtpSocket: Dgram.Socket
    readonly rtcpSocket: Dgram.Socket
    readonly address: string
    readonly rtpPort: number
    readonly rtcpPort: number
  }

/** Counters shared by every session of a simulator. */
export interface TransmitCounters {
  packets: number
  bytes: number
  frames: number
  framesDropped: number
}

export interface SessionSettings {
  readonly fps: number
  /** A TCP client with more than this many bytes queued misses frames until the next keyframe. */
  readonly maxQueuedBytes: number
  readonly senderReportIntervalTicks: number
  readonly cname: string
}

/** Whoever holds the session (its control connection); told when the server ends it. */
export interface SessionOwner {
  readonly sessions: Set<RtspSession>
}

const randomUint32 = (): number => Math.floor(Math.random() * 2 ** 32)

/**
 * Scratch space for stamping TCP frames. A socket write that completes
 * synchronously (nothing left queued) has handed the bytes to the kernel, so
 * the buffer can be stamped again for the next client; when the socket keeps
 * it queued, it is given up and a fresh one is allocated.
 */
const ScratchBytes = 256 * 1024
let tcpScratch: Buffer | undefined

export class RtspSession {
  readonly id: string
  readonly mount: Mount
  readonly owner: SessionOwner
  readonly transport: RtpTransport
  readonly target: MediaTarget
  readonly ssrc = randomUint32()
  readonly initialSeq = Math.floor(Math.random() * 0x10000)
  readonly initialTimestamp = randomUint32()
  private readonly settings: SessionSettings
  private readonly counters: TransmitCounters
  private seq: number
  private startTick = -1
  private waitingForKeyframe = true
  private nextReportTick = 0
  private lastTick = -1
  playing = false
  packets = 0
  octets = 0
  lastSeenMs = Date.now()
  /** The setup URL, echoed in RTP-Info. */
  trackUrl = ""

  constructor(
    id: string,
    mount: Mount,
    owner: SessionOwner,
    transport: RtpTransport,
    target: MediaTarget,
    settings: SessionSettings,
    counters: TransmitCounters
  ) {
    this.id = id
    this.mount = mount
    this.owner = owner
    this.transport = transport
    this.target = target
    this.settings = settings
    this.counters = counters
    this.seq = this.initialSeq
  }

  get nextSeq(): number {
    return this.seq
  }

  /** RTP timestamp announced in RTP-Info: the first frame's, or the one after the last sent. */
  get nextTimestamp(): number {
    return this.startTick < 0 ? this.initialTimestamp : this.timestampAt(this.lastTick + 1)
  }

  /** Resume after a gap (pause, hang): the next frame sent is a keyframe. */
  restartAtKeyframe(): void {
    this.waitingForKeyframe = true
  }

  private timestampAt(tick: number): number {
    return (this.initialTimestamp + Math.round(((tick - this.startTick) * VideoClockRate) / this.settings.fps)) %
      4_294_967_296
  }

  /** Sends the mount's frame for `tick`; called by the clock for playing sessions only. */
  sendFrame(frame: RtpFrame, tick: number, wallTimeMs: number): void {
    if (this.waitingForKeyframe) {
      if (!frame.keyframe) return
      this.waitingForKeyframe = false
      if (this.startTick < 0) {
        this.startTick = tick
        this.nextReportTick = tick
      }
    }
    const target = this.target
    const timestamp = this.timestampAt(tick)
    this.lastTick = tick
    const count = frame.packetCount
    if (target._tag === "Tcp") {
      const socket = target.socket
      if (socket.destroyed) return
      if (socket.writableLength > this.settings.maxQueuedBytes) {
        this.counters.framesDropped++
        this.waitingForKeyframe = true
        return
      }
      const data = frame.stamp(target.rtpChannel, this.seq, timestamp, this.ssrc,
        tcpScratch ??= Buffer.allocUnsafeSlow(ScratchBytes))
      socket.write(data)
      if (socket.writableLength !== 0 && data.buffer === tcpScratch.buffer) tcpScratch = undefined
      this.counters.bytes += data.length
    } else {
      const data = frame.stamp(0, this.seq, timestamp, this.ssrc)
      const offsets = frame.headerOffsets
      const lengths = frame.packetLengths
      for (let i = 0; i < count; i++) {
        target.rtpSocket.send(data, offsets[i]!, lengths[i]!, target.rtpPort, target.address)
      }
      this.counters.bytes += data.length - count * 4
    }
    this.seq = (this.seq + count) & 0xffff
    this.packets += count
    this.octets += frame.payloadOctets
    this.counters.packets += count
    this.counters.frames++
    if (tick >= this.nextReportTick) {
      this.nextReportTick = tick + this.settings.senderReportIntervalTicks
      this.sendReport(timestamp, wallTimeMs)
    }
  }

  private sendReport(rtpTimestamp: number, wallTimeMs: number): void {
    const report = senderReport({
      ssrc: this.ssrc,
      unixTimeMs: wallTimeMs,
      rtpTimestamp,
      packetCount: this.packets,
      octetCount: this.octets,
      cname: this.settings.cname
    })
    const target = this.target
    if (target._tag === "Tcp") {
      const prefix = Buffer.from([0x24, target.rtcpChannel, report.length >> 8, report.length & 0xff])
      target.socket.write(Buffer.concat([prefix, report]))
    } else {
      target.rtcpSocket.send(report, target.rtcpPort, target.address)
    }
  }
}
