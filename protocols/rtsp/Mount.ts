/**
 * One simulated camera path (`/cam0`, `/cam1`, …): its fault mode, the RTSP
 * connections that addressed it and the sessions set up on it. A mount plays
 * the shared clip from its own frame offset, so mounts do not send their
 * keyframes in the same tick.
 */
import { Schema } from "effect"
import type { RtspSession } from "./RtspSession.ts"

/**
 * - `normal`: answers and streams.
 * - `hang`: sockets stay open, but no media and no RTSP answers for this mount.
 * - `refuse`: new clients get `503 Service Unavailable` and are disconnected;
 *   sessions already playing keep playing.
 */
export const FaultMode = Schema.Literals(["normal", "hang", "refuse"])
export type FaultMode = typeof FaultMode.Type

/** What the mount needs to know about a connection to drop it. */
export interface MountConnection {
  destroy(): void
}

export class Mount {
  readonly name: string
  readonly index: number
  readonly frameOffset: number
  mode: FaultMode = "normal"
  readonly connections = new Set<MountConnection>()
  readonly sessions = new Set<RtspSession>()
  /** Sessions in PLAY state: the ones the clock sends frames to. */
  readonly playing = new Set<RtspSession>()

  constructor(index: number, frameOffset: number) {
    this.name = `cam${index}`
    this.index = index
    this.frameOffset = frameOffset
  }

  /** Closes every connection that addressed this mount (their sessions go with them). */
  dropConnections(): number {
    const connections = [...this.connections]
    for (const connection of connections) connection.destroy()
    return connections.length
  }
}
