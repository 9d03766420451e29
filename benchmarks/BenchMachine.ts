/**
 * What every benchmark records about where it ran: the machine, Node, the
 * ffmpeg in use, and the test clip the simulator serves.
 */
import { Effect } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Os from "node:os"
import type { TestClip } from "../protocols/rtsp/TestClip.ts"

/** The first line of `ffmpeg -version`. */
export const ffmpegVersion = (ffmpegPath: string) =>
  Effect.flatMap(ChildProcessSpawner.ChildProcessSpawner, (spawner) =>
    spawner.string(ChildProcess.make(ffmpegPath, ["-version"]))).pipe(
      Effect.map((output) => output.split("\n")[0]!.trim())
    )

export const machineFacts = (ffmpeg: string) => ({
  node: process.version,
  ffmpeg,
  cores: Os.cpus().length,
  cpuModel: Os.cpus()[0]?.model ?? "unknown",
  kernel: Os.release()
})

/** The "Machine" section of a report page. */
export const machineSection = (machine: ReturnType<typeof machineFacts>, startedAt: string): Array<string> => [
  "## Machine",
  "",
  `- ${machine.cores} cores (${machine.cpuModel}), Linux ${machine.kernel}`,
  `- Node ${machine.node}`,
  `- ${machine.ffmpeg}`,
  `- run started ${startedAt}`,
  ""
]

export const clipFacts = (clip: TestClip) => ({
  width: clip.width,
  height: clip.height,
  fps: clip.fps,
  bitrateKbps: (clip.frames.reduce((sum, frame) => sum + frame.payloadOctets, 0) * 8 * clip.fps) / clip.frames.length / 1000
})
