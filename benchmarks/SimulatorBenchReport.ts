/**
 * The result of `vms bench simulator` as a Schema (written as JSON) and its
 * Markdown rendering.
 */
import { Schema } from "effect"

export const SimulatorBenchResult = Schema.Struct({
  scenario: Schema.Literal("simulator"),
  startedAt: Schema.String,
  cameras: Schema.Int,
  warmupSeconds: Schema.Number,
  windowSeconds: Schema.Number,
  simulator: Schema.Struct({
    cpuPercentOfOneCore: Schema.Number,
    cpuPercentPerStream: Schema.Number,
    /** (loaded − idle) / streams: the cost of one more stream. */
    marginalCpuPercentPerStream: Schema.Number,
    idleCpuPercentOfOneCore: Schema.Number,
    rssMegabytes: Schema.Number,
    rssMaxMegabytes: Schema.Number,
    idleRssMegabytes: Schema.Number,
    sentMegabitsPerSecond: Schema.Number,
    framesDropped: Schema.Number
  }),
  clients: Schema.Struct({
    kind: Schema.String,
    receiving: Schema.Int,
    stalled: Schema.Int,
    fpsMin: Schema.Number,
    fpsMedian: Schema.Number,
    fpsMax: Schema.Number
  }),
  budget: Schema.Struct({
    cpuPercentPerStream: Schema.Number,
    pass: Schema.Boolean
  }),
  machine: Schema.Struct({
    node: Schema.String,
    ffmpeg: Schema.String,
    cores: Schema.Int,
    cpuModel: Schema.String,
    kernel: Schema.String
  }),
  clip: Schema.Struct({
    width: Schema.Int,
    height: Schema.Int,
    fps: Schema.Number,
    bitrateKbps: Schema.Number,
    gopFrames: Schema.Int
  })
})
export type SimulatorBenchResult = typeof SimulatorBenchResult.Type

const fixed = (value: number, digits: number) => value.toFixed(digits)

export const toMarkdown = (result: SimulatorBenchResult): string => {
  const { budget, clients, clip, machine, simulator } = result
  const verdict = budget.pass ? "**PASS**" : "**FAIL**"
  return [
    "# Simulator benchmark",
    "",
    `\`vms bench simulator --cameras ${result.cameras}\`, run ${result.startedAt}.`,
    "",
    `The RTSP camera simulator runs as its own process serving ${result.cameras} mounts of a ` +
    `${clip.width}x${clip.height} ${clip.fps} fps ~${Math.round(clip.bitrateKbps)} kbps H.264 clip ` +
    `(GOP ${clip.gopFrames}); one ${clients.kind} client pulls each mount over RTSP/TCP. After ` +
    `${result.warmupSeconds} s of warm-up, the simulator's CPU time (utime + stime from /proc) and RSS are ` +
    `sampled over a ${fixed(result.windowSeconds, 1)} s window.`,
    "",
    "| metric | value |",
    "|---|---|",
    `| streams | ${result.cameras} |`,
    `| simulator CPU, % of one core (total) | ${fixed(simulator.cpuPercentOfOneCore, 2)} |`,
    `| simulator CPU, % of one core per stream | ${fixed(simulator.cpuPercentPerStream, 3)} |`,
    `| simulator CPU, % of one core per additional stream (above idle) | ` +
    `${fixed(simulator.marginalCpuPercentPerStream, 3)} |`,
    `| budget per stream (total / streams) | ≤ ${budget.cpuPercentPerStream} % — ${verdict} |`,
    `| simulator RSS, MB (mean / max in window) | ${fixed(simulator.rssMegabytes, 1)} / ` +
    `${fixed(simulator.rssMaxMegabytes, 1)} |`,
    `| simulator idle (no clients): CPU % / RSS MB | ${fixed(simulator.idleCpuPercentOfOneCore, 2)} / ` +
    `${fixed(simulator.idleRssMegabytes, 1)} |`,
    `| media sent, Mbit/s | ${fixed(simulator.sentMegabitsPerSecond, 1)} |`,
    `| frames dropped for slow clients | ${simulator.framesDropped} |`,
    `| clients receiving / stalled (< 14 fps) | ${clients.receiving} / ${clients.stalled} |`,
    `| per-client fps min / median / max | ${fixed(clients.fpsMin, 2)} / ${fixed(clients.fpsMedian, 2)} / ` +
    `${fixed(clients.fpsMax, 2)} |`,
    "",
    "Machine:",
    "",
    `- Node ${machine.node}`,
    `- ${machine.ffmpeg}`,
    `- ${machine.cores} cores (${machine.cpuModel}), Linux ${machine.kernel}`,
    "",
    `RSS includes the Node runtime and the Effect modules (the idle figure); serving ${result.cameras} ` +
    `streams adds ${fixed(simulator.rssMegabytes - simulator.idleRssMegabytes, 1)} MB ` +
    `(${fixed(((simulator.rssMegabytes - simulator.idleRssMegabytes) * 1024) / result.cameras, 0)} KB per stream: ` +
    "socket buffers and not yet collected garbage). The clip is held in memory once, already packetized.",
    ""
  ].join("\n")
}
