/**
 * SDP (RFC 8866) session descriptions for one H.264 video track, as a camera
 * answers DESCRIBE: RTP/AVP payload type 96, 90 kHz clock, and the RFC 6184
 * fmtp line with packetization-mode, profile-level-id and sprop-parameter-sets.
 */
import { H264PayloadType, VideoClockRate } from "./RtpH264.ts"

export interface H264SdpInput {
  readonly sessionName: string
  readonly sessionId: string
  readonly serverAddress: string
  readonly trackControl: string
  readonly sps: Uint8Array
  readonly pps: Uint8Array
  readonly profileLevelId: string
  readonly fps: number
  readonly width: number
  readonly height: number
}

export const h264SessionDescription = (input: H264SdpInput): string => {
  const sprop = `${Buffer.from(input.sps).toString("base64")},${Buffer.from(input.pps).toString("base64")}`
  const lines = [
    "v=0",
    `o=- ${input.sessionId} 1 IN IP4 ${input.serverAddress}`,
    `s=${input.sessionName}`,
    "c=IN IP4 0.0.0.0",
    "t=0 0",
    "a=control:*",
    "a=range:npt=now-",
    `m=video 0 RTP/AVP ${H264PayloadType}`,
    `a=rtpmap:${H264PayloadType} H264/${VideoClockRate}`,
    `a=fmtp:${H264PayloadType} packetization-mode=1;profile-level-id=${input.profileLevelId};sprop-parameter-sets=${sprop}`,
    `a=framerate:${input.fps}`,
    `a=x-dimensions:${input.width},${input.height}`,
    `a=control:${input.trackControl}`
  ]
  return lines.join("\r\n") + "\r\n"
}

/** Reads the SPS and PPS back out of an SDP's `sprop-parameter-sets`. */
export const parseSpropParameterSets = (sdp: string): ReadonlyArray<Uint8Array> => {
  const match = /sprop-parameter-sets=([^;\s]+)/.exec(sdp)
  if (match === null) return []
  return match[1]!.split(",").map((set) => new Uint8Array(Buffer.from(set, "base64")))
}
