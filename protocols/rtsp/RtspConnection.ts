/**
 * One RTSP control connection: reads requests (pipelined, with interleaved
 * RTCP from the client mixed in), answers OPTIONS, DESCRIBE, SETUP, PLAY,
 * PAUSE, TEARDOWN, GET_PARAMETER and SET_PARAMETER, and owns the sessions it
 * set up: they end when the connection closes. Fault modes of the addressed
 * mount decide whether a request is answered, refused or swallowed.
 */
import { randomBytes } from "node:crypto"
import type * as Net from "node:net"
import type { Mount, MountConnection } from "./Mount.ts"
import { formatResponse, type RtspMessage, RtspMessageReader, type RtspRequest } from "./RtspMessage.ts"
import { type MediaTarget, RtspSession, type SessionSettings, type TransmitCounters } from "./RtspSession.ts"
import { formatTransport, parseTransport } from "./RtspTransport.ts"
import { h264SessionDescription } from "./Sdp.ts"
import type { TestClip } from "./TestClip.ts"
import type { UdpPorts } from "./UdpPorts.ts"

/** What a connection needs from the server it belongs to. */
export interface RtspServerContext {
  readonly clip: TestClip
  readonly udp: UdpPorts
  readonly sessionTimeoutSeconds: number
  readonly sessionSettings: SessionSettings
  readonly counters: TransmitCounters
  mount(name: string): Mount | undefined
  openSession(session: RtspSession): void
  closeSession(session: RtspSession): void
  connectionClosed(connection: RtspConnection): void
}

const ServerName = "vms-simulator"
const PublicMethods = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
const TrackControl = "trackID=0"

type Headers = Array<readonly [string, string]>

export class RtspConnection implements MountConnection {
  readonly socket: Net.Socket
  readonly sessions = new Set<RtspSession>()
  readonly mounts = new Set<Mount>()
  private readonly server: RtspServerContext
  private readonly reader = new RtspMessageReader()
  private readonly remoteAddress: string

  constructor(socket: Net.Socket, server: RtspServerContext) {
    this.socket = socket
    this.server = server
    this.remoteAddress = (socket.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, "")
    socket.setNoDelay(true)
    socket.on("data", (chunk: Buffer) => this.receive(chunk))
    socket.on("error", () => socket.destroy())
    socket.on("close", () => this.closed())
  }

  destroy(): void {
    this.socket.destroy()
  }

  private closed(): void {
    for (const session of [...this.sessions]) this.server.closeSession(session)
    for (const mount of this.mounts) mount.connections.delete(this)
    this.mounts.clear()
    this.server.connectionClosed(this)
  }

  private receive(chunk: Buffer): void {
    const now = Date.now()
    for (const session of this.sessions) session.lastSeenMs = now
    for (const message of this.reader.push(chunk)) this.handle(message)
  }

  private handle(message: RtspMessage): void {
    switch (message._tag) {
      case "Request":
        return this.request(message)
      case "Malformed":
        this.reply(400, [], undefined)
        this.socket.end()
        return
      default:
        // Interleaved RTCP receiver reports and stray responses: liveness only.
        return
    }
  }

  private request(request: RtspRequest): void {
    if (this.socket.destroyed) return
    const cseq = request.headers["cseq"]
    const base: Headers = cseq === undefined ? [] : [["CSeq", cseq]]
    const target = this.resolve(request.uri)
    if (target === "invalid") return this.reply(400, base)
    const mount = target?.mount
    // A hung camera answers nothing on a connection that has addressed it.
    for (const addressed of this.mounts) if (addressed.mode === "hang") return
    if (mount?.mode === "hang") {
      this.mounts.add(mount)
      mount.connections.add(this)
      return
    }
    if (mount !== undefined) {
      if (!this.mounts.has(mount)) {
        this.mounts.add(mount)
        mount.connections.add(this)
      }
      if (mount.mode === "refuse" && this.sessions.size === 0) {
        this.reply(503, base)
        this.socket.end()
        return
      }
    }
    switch (request.method) {
      case "OPTIONS":
        return this.reply(200, [...base, ["Public", PublicMethods]])
      case "DESCRIBE":
        if (mount === undefined) return this.reply(404, base)
        return this.describe(mount, target!.origin, base)
      case "SETUP":
        if (mount === undefined) return this.reply(404, base)
        return this.setup(request, mount, base)
      case "PLAY":
        return this.play(request, base)
      case "PAUSE":
      case "TEARDOWN":
      case "GET_PARAMETER":
      case "SET_PARAMETER":
        return this.sessionRequest(request, base)
      default:
        return this.reply(501, [...base, ["Public", PublicMethods]])
    }
  }

  /** `undefined` for `*` or an empty path; `mount: undefined` when the first path segment names no mount. */
  private resolve(uri: string): { readonly mount: Mount | undefined; readonly origin: string } | undefined | "invalid" {
    if (uri === "*") return undefined
    let url: URL
    try {
      url = new URL(uri)
    } catch {
      return "invalid"
    }
    const name = url.pathname.split("/").find((segment) => segment.length > 0)
    if (name === undefined) return undefined
    return { mount: this.server.mount(decodeURIComponent(name)), origin: `${url.protocol}//${url.host}` }
  }

  private describe(mount: Mount, origin: string, base: Headers): void {
    const clip = this.server.clip
    const contentBase = `${origin}/${mount.name}/`
    const sdp = h264SessionDescription({
      sessionName: mount.name,
      sessionId: `${Date.now()}`,
      serverAddress: this.socket.localAddress?.replace(/^::ffff:/, "") ?? "127.0.0.1",
      trackControl: TrackControl,
      sps: clip.sps,
      pps: clip.pps,
      profileLevelId: clip.profileLevelId,
      fps: clip.fps,
      width: clip.width,
      height: clip.height
    })
    this.reply(200, [...base, ["Content-Base", contentBase], ["Content-Type", "application/sdp"]], sdp)
  }

  private setup(request: RtspRequest, mount: Mount, base: Headers): void {
    const existing = this.findSession(request)
    if (existing === "unknown") return this.reply(454, base)
    if (existing !== undefined) return this.reply(459, base)
    const transport = parseTransport(request.headers["transport"] ?? "")
    if (transport === undefined) return this.reply(461, base)
    const target: MediaTarget = transport._tag === "Tcp"
      ? { _tag: "Tcp", socket: this.socket, rtpChannel: transport.rtpChannel, rtcpChannel: transport.rtcpChannel }
      : {
        _tag: "Udp",
        rtpSocket: this.server.udp.rtpSocket,
        rtcpSocket: this.server.udp.rtcpSocket,
        address: this.remoteAddress,
        rtpPort: transport.clientRtpPort,
        rtcpPort: transport.clientRtcpPort
      }
    const session = new RtspSession(
      randomBytes(8).toString("hex").toUpperCase(),
      mount,
      this,
      transport,
      target,
      this.server.sessionSettings,
      this.server.counters
    )
    session.trackUrl = request.uri
    this.sessions.add(session)
    this.server.openSession(session)
    this.reply(200, [
      ...base,
      ["Transport", formatTransport(transport, session.ssrc, this.server.udp.ports)],
      ["Session", `${session.id};timeout=${this.server.sessionTimeoutSeconds}`]
    ])
  }

  private play(request: RtspRequest, base: Headers): void {
    const session = this.findSession(request)
    if (session === undefined || session === "unknown") return this.reply(454, base)
    const rtpInfo = session.playing
      ? undefined
      : `url=${session.trackUrl};seq=${session.nextSeq};rtptime=${session.nextTimestamp}`
    session.mount.playing.add(session)
    session.playing = true
    this.reply(200, [
      ...base,
      ["Session", session.id],
      ["Range", "npt=0.000-"],
      ...(rtpInfo === undefined ? [] : [["RTP-Info", rtpInfo] as const])
    ])
  }

  private sessionRequest(request: RtspRequest, base: Headers): void {
    const session = this.findSession(request)
    if (session === "unknown" || (session === undefined && request.method !== "GET_PARAMETER")) {
      return this.reply(454, base)
    }
    if (session !== undefined) {
      if (request.method === "PAUSE") {
        session.mount.playing.delete(session)
        session.playing = false
        session.restartAtKeyframe()
      } else if (request.method === "TEARDOWN") {
        this.server.closeSession(session)
      }
    }
    this.reply(200, session === undefined ? base : [...base, ["Session", session.id]])
  }

  /** `undefined` without a Session header; `"unknown"` for an id this connection does not own. */
  private findSession(request: RtspRequest): RtspSession | undefined | "unknown" {
    const header = request.headers["session"]
    if (header === undefined) return undefined
    const id = header.split(";")[0]!.trim()
    for (const session of this.sessions) if (session.id === id) return session
    return "unknown"
  }

  private reply(status: number, headers: Headers, body?: string): void {
    if (this.socket.destroyed || !this.socket.writable) return
    this.socket.write(formatResponse(status, [...headers, ["Server", ServerName]], body))
  }
}
