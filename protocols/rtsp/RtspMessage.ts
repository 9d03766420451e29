/**
 * RTSP 1.0 (RFC 2326) message framing on a TCP byte stream: requests,
 * responses and `$`-interleaved binary frames, possibly pipelined and split
 * across reads in any way. Also formats responses and requests.
 *
 * It does not interpret methods or headers beyond framing (Content-Length);
 * the server state machine lives in `RtspConnection.ts`.
 */

export interface RtspRequest {
  readonly _tag: "Request"
  readonly method: string
  readonly uri: string
  /** Header names lower-cased; a repeated header keeps its last value. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

export interface RtspResponse {
  readonly _tag: "Response"
  readonly status: number
  readonly reason: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

export interface InterleavedFrame {
  readonly _tag: "Interleaved"
  readonly channel: number
  readonly payload: Buffer
}

export interface MalformedMessage {
  readonly _tag: "Malformed"
  readonly reason: string
}

export type RtspMessage = RtspRequest | RtspResponse | InterleavedFrame | MalformedMessage

const MaxHeaderBytes = 16 * 1024
const MaxBodyBytes = 64 * 1024
const HeaderEnd = Buffer.from("\r\n\r\n")
const Empty = Buffer.alloc(0)

/**
 * Incremental reader: feed it every chunk read from the socket; it returns the
 * complete messages found so far and keeps the remainder. After a `Malformed`
 * message the stream cannot be resynchronised and the connection should close.
 */
export class RtspMessageReader {
  private pending: Buffer = Empty
  private failed = false

  push(chunk: Buffer): Array<RtspMessage> {
    if (this.failed) return []
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const messages: Array<RtspMessage> = []
    let offset = 0
    const data = this.pending
    while (offset < data.length) {
      if (data[offset] === 0x24) {
        if (data.length - offset < 4) break
        const length = data.readUInt16BE(offset + 2)
        if (data.length - offset < 4 + length) break
        messages.push({
          _tag: "Interleaved",
          channel: data[offset + 1]!,
          payload: data.subarray(offset + 4, offset + 4 + length)
        })
        offset += 4 + length
        continue
      }
      // Tolerate stray line breaks between messages.
      if (data[offset] === 0x0d || data[offset] === 0x0a) {
        offset++
        continue
      }
      const headerEnd = data.indexOf(HeaderEnd, offset)
      if (headerEnd < 0) {
        if (data.length - offset > MaxHeaderBytes) return this.fail(messages, "header too large")
        break
      }
      const head = parseHead(data.toString("latin1", offset, headerEnd))
      if (typeof head === "string") return this.fail(messages, head)
      const contentLength = Number(head.headers["content-length"] ?? "0")
      if (!Number.isInteger(contentLength) || contentLength < 0 || contentLength > MaxBodyBytes) {
        return this.fail(messages, "invalid Content-Length")
      }
      const bodyStart = headerEnd + HeaderEnd.length
      if (data.length - bodyStart < contentLength) break
      const body = Buffer.from(data.subarray(bodyStart, bodyStart + contentLength))
      messages.push({ ...head, body })
      offset = bodyStart + contentLength
    }
    this.pending = offset >= data.length ? Empty : Buffer.from(data.subarray(offset))
    return messages
  }

  private fail(messages: Array<RtspMessage>, reason: string): Array<RtspMessage> {
    this.failed = true
    this.pending = Empty
    messages.push({ _tag: "Malformed", reason })
    return messages
  }
}

type Head =
  | Omit<RtspRequest, "body">
  | Omit<RtspResponse, "body">

const parseHead = (text: string): Head | string => {
  const lines = text.split(/\r?\n/)
  const startLine = lines[0]!.split(" ")
  const headers: Record<string, string> = {}
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(":")
    if (colon <= 0) return `malformed header line: ${line.slice(0, 80)}`
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  if (startLine[0]!.startsWith("RTSP/")) {
    const status = Number(startLine[1])
    if (!Number.isInteger(status)) return "malformed status line"
    return { _tag: "Response", status, reason: startLine.slice(2).join(" "), headers }
  }
  if (startLine.length !== 3 || !startLine[2]!.startsWith("RTSP/")) return "malformed request line"
  return { _tag: "Request", method: startLine[0]!.toUpperCase(), uri: startLine[1]!, headers }
}

const Reasons: Readonly<Record<number, string>> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  454: "Session Not Found",
  455: "Method Not Valid in This State",
  459: "Aggregate Operation Not Allowed",
  461: "Unsupported Transport",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "RTSP Version Not Supported"
}

export const formatResponse = (
  status: number,
  headers: ReadonlyArray<readonly [string, string]>,
  body: string = ""
): string => {
  let text = `RTSP/1.0 ${status} ${Reasons[status] ?? "Unknown"}\r\n`
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`
  if (body.length > 0) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`
  return text + "\r\n" + body
}

export const formatRequest = (
  method: string,
  uri: string,
  headers: ReadonlyArray<readonly [string, string]>
): string => {
  let text = `${method} ${uri} RTSP/1.0\r\n`
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`
  return text + "\r\n"
}
