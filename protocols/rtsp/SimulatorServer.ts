/**
 * The simulator's imperative core: the TCP listener, the mounts, the session
 * registry, the frame clock that sends every playing session its mount's
 * frame, UDP session expiry and the fault controls. Plain callbacks and
 * counters only, because this is the per-frame hot path; `Simulator.ts` wraps
 * it as a scoped Effect resource.
 */
import * as Net from "node:net"
import { FrameClock } from "./FrameClock.ts"
import { type FaultMode, Mount } from "./Mount.ts"
import { RtspConnection, type RtspServerContext } from "./RtspConnection.ts"
import type { RtspSession, SessionSettings, TransmitCounters } from "./RtspSession.ts"
import type { TestClip } from "./TestClip.ts"
import type { UdpPorts } from "./UdpPorts.ts"

export interface SimulatorServerConfig {
  readonly cameras: number
  readonly host: string
  readonly sessionTimeoutSeconds: number
  readonly maxQueuedBytes: number
  readonly senderReportIntervalSeconds: number
  readonly listenBacklog: number
}

export interface MountSnapshot {
  readonly name: string
  readonly mode: FaultMode
  readonly connections: number
  readonly sessions: number
  readonly playing: number
}

export class SimulatorServer implements RtspServerContext {
  readonly clip: TestClip
  readonly udp: UdpPorts
  readonly mounts: ReadonlyArray<Mount>
  readonly sessionTimeoutSeconds: number
  readonly sessionSettings: SessionSettings
  readonly counters: TransmitCounters = { packets: 0, bytes: 0, frames: 0, framesDropped: 0 }
  readonly connections = new Set<RtspConnection>()
  connectionsAccepted = 0
  sessionsExpired = 0
  port = 0
  private readonly config: SimulatorServerConfig
  private readonly mountsByName = new Map<string, Mount>()
  private readonly sessions = new Map<string, RtspSession>()
  /** `address:port` of a UDP client's RTP and RTCP ports → its session. */
  private readonly udpPeers = new Map<string, RtspSession>()
  private readonly clock: FrameClock
  private listener: Net.Server | undefined
  private expiryTimer: NodeJS.Timeout | undefined

  constructor(config: SimulatorServerConfig, clip: TestClip, udp: UdpPorts) {
    this.config = config
    this.clip = clip
    this.udp = udp
    this.sessionTimeoutSeconds = config.sessionTimeoutSeconds
    this.sessionSettings = {
      fps: clip.fps,
      maxQueuedBytes: config.maxQueuedBytes,
      senderReportIntervalTicks: Math.max(1, Math.round(config.senderReportIntervalSeconds * clip.fps)),
      cname: `vms-simulator@${config.host}`
    }
    this.mounts = Array.from({ length: config.cameras }, (_, index) => new Mount(index, index % clip.frames.length))
    for (const mount of this.mounts) this.mountsByName.set(mount.name, mount)
    this.clock = new FrameClock(clip.fps, this.tick)
  }

  get listening(): boolean {
    return this.listener !== undefined
  }

  /** Starts the clock, the session expiry timer and the listener; resolves with the bound port. */
  async start(port: number): Promise<number> {
    this.clock.start()
    this.expiryTimer = setInterval(() => this.expireSessions(), 1000)
    return this.listen(port)
  }

  /** (Re)opens the RTSP listener on `port` (0 picks a free one the first time). */
  listen(port: number = this.port): Promise<number> {
    if (this.listener !== undefined) return Promise.resolve(this.port)
    const listener = Net.createServer({ noDelay: true }, (socket) => this.accept(socket))
    return new Promise((resolve, reject) => {
      listener.once("error", reject)
      listener.listen({ port, host: this.config.host, backlog: this.config.listenBacklog }, () => {
        listener.removeListener("error", reject)
        listener.on("error", () => {})
        this.listener = listener
        const address = listener.address()
        this.port = typeof address === "object" && address !== null ? address.port : port
        resolve(this.port)
      })
    })
  }

  /** Closes the listener: new connects get ECONNREFUSED; established connections stay. */
  stopListening(): void {
    this.listener?.close()
    this.listener = undefined
  }

  /** Stops everything and closes every socket. */
  close(): void {
    this.clock.stop()
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer)
    this.stopListening()
    for (const connection of [...this.connections]) connection.destroy()
  }

  mount(name: string): Mount | undefined {
    return this.mountsByName.get(name)
  }

  /** Resolves `cam3`, `3` or `/cam3` to a mount. */
  findMount(ref: string | number): Mount | undefined {
    if (typeof ref === "number") return this.mounts[ref]
    const name = ref.replace(/^\/+/, "")
    return /^\d+$/.test(name) ? this.mounts[Number(name)] : this.mountsByName.get(name)
  }

  setMode(mount: Mount, mode: FaultMode): void {
    const previous = mount.mode
    mount.mode = mode
    if (previous === "hang" && mode !== "hang") {
      const now = Date.now()
      for (const session of mount.sessions) {
        session.lastSeenMs = now
        session.restartAtKeyframe()
      }
    }
  }

  openSession(session: RtspSession): void {
    this.sessions.set(session.id, session)
    session.mount.sessions.add(session)
    if (session.transport._tag === "Udp" && session.target._tag === "Udp") {
      this.udpPeers.set(`${session.target.address}:${session.target.rtpPort}`, session)
      this.udpPeers.set(`${session.target.address}:${session.target.rtcpPort}`, session)
    }
  }

  closeSession(session: RtspSession): void {
    session.playing = false
    session.owner.sessions.delete(session)
    session.mount.playing.delete(session)
    session.mount.sessions.delete(session)
    this.sessions.delete(session.id)
    if (session.target._tag === "Udp") {
      for (const port of [session.target.rtpPort, session.target.rtcpPort]) {
        const key = `${session.target.address}:${port}`
        if (this.udpPeers.get(key) === session) this.udpPeers.delete(key)
      }
    }
  }

  connectionClosed(connection: RtspConnection): void {
    this.connections.delete(connection)
  }

  /** A UDP packet from a client (RTCP receiver report, NAT punch): its session is alive. */
  udpPacket(address: string, port: number): void {
    const session = this.udpPeers.get(`${address}:${port}`)
    if (session !== undefined) session.lastSeenMs = Date.now()
  }

  snapshot(): ReadonlyArray<MountSnapshot> {
    return this.mounts.map((mount) => ({
      name: mount.name,
      mode: mount.mode,
      connections: mount.connections.size,
      sessions: mount.sessions.size,
      playing: mount.playing.size
    }))
  }

  get sessionCount(): number {
    return this.sessions.size
  }

  private accept(socket: Net.Socket): void {
    this.connectionsAccepted++
    this.connections.add(new RtspConnection(socket, this))
  }

  private readonly tick = (tick: number, wallTimeMs: number): void => {
    const frames = this.clip.frames
    const frameCount = frames.length
    for (const mount of this.mounts) {
      if (mount.playing.size === 0 || mount.mode === "hang") continue
      const frame = frames[(tick + mount.frameOffset) % frameCount]!
      for (const session of mount.playing) session.sendFrame(frame, tick, wallTimeMs)
    }
  }

  private expireSessions(): void {
    const deadline = Date.now() - this.sessionTimeoutSeconds * 1000
    for (const session of this.sessions.values()) {
      if (session.lastSeenMs < deadline && session.mount.mode !== "hang") {
        this.sessionsExpired++
        this.closeSession(session)
      }
    }
  }
}
