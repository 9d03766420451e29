/**
 * What we read from ffmpeg's stderr (`-loglevel info`): the video stream's
 * codec and resolution, once, and the last line worth showing an operator
 * as the reason a run failed.
 */

export interface StreamInfo {
  readonly codec: string
  readonly width: number
  readonly height: number
}

// "  Stream #0:0: Video: h264 (Main), yuv420p(progressive), 1280x720 [SAR 1:1 DAR 16:9], 15 fps, …"
const videoStream = /^\s*Stream #\d+:\d+.*?: Video: ([a-z0-9_]+).*?, (\d{2,5})x(\d{2,5})/

/** The input's video stream, from the first `Stream #…: Video:` line. */
export const parseStreamInfo = (line: string): StreamInfo | undefined => {
  const match = videoStream.exec(line)
  if (match === null) return undefined
  return { codec: match[1]!, width: Number(match[2]), height: Number(match[3]) }
}

// Lines that describe progress or setup, never a failure.
const noise = [
  /^\s*(Input|Output) #\d/,
  /^\s*(Stream|Metadata|Duration|Side data|title|encoder)\b/,
  /^\s*Stream mapping:/,
  /^\s*Press \[q\]/,
  /^ffmpeg stats and -progress period/,
  /^frame=\s*\d+/,
  /^video:\d+kB/,
  /Opening '.*' for writing/,
  /Timestamps are unset in a packet/,
  /Non-monotonous DTS/,
  /^Exiting normally/
]

/** True when a stderr line may explain a failure (the reason shown to operators). */
export const isReasonLine = (line: string): boolean => line.trim().length > 0 && !noise.some((re) => re.test(line))

/**
 * Makes a reason readable and safe to show: drops ffmpeg's `[component @ 0x…]`
 * prefix and masks credentials in any URL it quotes.
 */
export const cleanReason = (line: string): string =>
  line
    .replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, "")
    .replace(/(rtsps?:\/\/)[^/@\s]*@/g, "$1***:***@")
    .trim()
    .slice(0, 500)
