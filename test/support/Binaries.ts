/**
 * The system binaries tests drive for real (ffmpeg, promtool, …). A missing
 * one fails the test with one line naming the Debian package to install.
 */
import { execFileSync } from "node:child_process"

const packages: Record<string, string> = {
  ffmpeg: "ffmpeg",
  ffprobe: "ffmpeg",
  promtool: "prometheus",
  "nats-server": "nats-server",
  "redis-server": "redis-server",
  chromium: "chromium",
  cc: "gcc"
}

/** The absolute path of `name`, or an error naming the package that provides it. */
export const requireBinary = (name: string): string => {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim()
  } catch {
    throw new Error(`${name} not found on PATH: apt-get install ${packages[name] ?? name}`)
  }
}
