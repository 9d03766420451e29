/**
 * The RTSP `Transport` header (RFC 2326 12.39) for unicast RTP/AVP: TCP
 * interleaved channels or UDP client ports. Multicast is not offered.
 */

export type RtpTransport =
  | { readonly _tag: "Tcp"; readonly rtpChannel: number; readonly rtcpChannel: number }
  | { readonly _tag: "Udp"; readonly clientRtpPort: number; readonly clientRtcpPort: number }

/**
 * Picks the first acceptable transport from a client's comma-separated list.
 * `undefined` when none is (multicast, unknown profile, missing ports).
 */
export const parseTransport = (header: string): RtpTransport | undefined => {
  for (const spec of header.split(",")) {
    const [protocol, ...params] = spec.trim().split(";")
    const profile = protocol!.toUpperCase()
    const options = new Map<string, string>()
    for (const param of params) {
      const eq = param.indexOf("=")
      options.set((eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase(), eq < 0 ? "" : param.slice(eq + 1).trim())
    }
    if (options.has("multicast")) continue
    if (profile === "RTP/AVP/TCP") {
      const [rtp, rtcp] = parseRange(options.get("interleaved") ?? "0-1")
      if (rtp !== undefined && rtp <= 255 && rtcp <= 255) return { _tag: "Tcp", rtpChannel: rtp, rtcpChannel: rtcp }
    } else if (profile === "RTP/AVP" || profile === "RTP/AVP/UDP") {
      const [rtp, rtcp] = parseRange(options.get("client_port") ?? "")
      if (rtp !== undefined && rtp > 0 && rtcp <= 65535) {
        return { _tag: "Udp", clientRtpPort: rtp, clientRtcpPort: rtcp }
      }
    }
  }
  return undefined
}

const parseRange = (value: string): readonly [number | undefined, number] => {
  const [first, second] = value.split("-")
  const a = Number(first)
  if (first === undefined || first === "" || !Number.isInteger(a) || a < 0) return [undefined, 0]
  const b = second === undefined ? a + 1 : Number(second)
  return Number.isInteger(b) && b >= 0 ? [a, b] : [undefined, 0]
}

export const formatTransport = (
  transport: RtpTransport,
  ssrc: number,
  serverPorts: readonly [number, number]
): string => {
  const ssrcHex = ssrc.toString(16).padStart(8, "0").toUpperCase()
  return transport._tag === "Tcp"
    ? `RTP/AVP/TCP;unicast;interleaved=${transport.rtpChannel}-${transport.rtcpChannel};ssrc=${ssrcHex}`
    : `RTP/AVP;unicast;client_port=${transport.clientRtpPort}-${transport.clientRtcpPort};` +
      `server_port=${serverPorts[0]}-${serverPorts[1]};ssrc=${ssrcHex}`
}
