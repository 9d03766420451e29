/**
 * The server side of RTP over UDP: one RTP/RTCP socket pair (even port and
 * the next odd one) shared by every UDP session, as cameras announce in
 * `server_port=`. Anything a client sends to either port (RTCP receiver
 * reports, NAT punching packets) counts as a sign of life for its session.
 */
import * as Dgram from "node:dgram"
import { Effect } from "effect"
import { SimulatorError } from "./SimulatorError.ts"

export interface UdpPorts {
  readonly rtpSocket: Dgram.Socket
  readonly rtcpSocket: Dgram.Socket
  readonly ports: readonly [number, number]
}

const bindSocket = (host: string, port: number): Promise<Dgram.Socket> =>
  new Promise((resolve, reject) => {
    const socket = Dgram.createSocket({ type: "udp4", sendBufferSize: 4 * 1024 * 1024 })
    socket.once("error", (error) => {
      socket.close()
      reject(error)
    })
    socket.bind(port, host, () => {
      socket.removeAllListeners("error")
      socket.on("error", () => {})
      resolve(socket)
    })
  })

const bindPair = async (host: string, attempts: number): Promise<UdpPorts> => {
  let lastError: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    const rtpSocket = await bindSocket(host, 0)
    const rtpPort = rtpSocket.address().port
    if (rtpPort % 2 !== 0 || rtpPort === 65535) {
      rtpSocket.close()
      continue
    }
    try {
      const rtcpSocket = await bindSocket(host, rtpPort + 1)
      return { rtpSocket, rtcpSocket, ports: [rtpPort, rtpPort + 1] }
    } catch (error) {
      lastError = error
      rtpSocket.close()
    }
  }
  throw lastError ?? new Error("no free even/odd UDP port pair")
}

/** Binds a fresh RTP/RTCP pair on `host`, closed with the scope. */
export const bindUdpPorts = (host: string, onPacket: (address: string, port: number) => void) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => bindPair(host, 50),
      catch: (cause) => new SimulatorError({ reason: `cannot bind UDP RTP/RTCP ports: ${String(cause)}` })
    }),
    ({ rtcpSocket, rtpSocket }) =>
      Effect.sync(() => {
        rtpSocket.close()
        rtcpSocket.close()
      })
  ).pipe(
    Effect.tap(({ rtcpSocket, rtpSocket }) =>
      Effect.sync(() => {
        const onMessage = (_message: Buffer, remote: Dgram.RemoteInfo) => onPacket(remote.address, remote.port)
        rtpSocket.on("message", onMessage)
        rtcpSocket.on("message", onMessage)
      })
    )
  )
