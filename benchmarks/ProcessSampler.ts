/**
 * CPU time and resident memory of one Linux process, read from
 * `/proc/<pid>/stat` and `/proc/<pid>/status`, for benchmarks that measure a
 * process alone.
 */
import { Effect, FileSystem, Schema } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

export class ProcessSampleError extends Schema.TaggedError<ProcessSampleError>()("ProcessSampleError", {
  pid: Schema.Number,
  reason: Schema.String
}) {}

export interface ProcessSample {
  /** utime + stime in clock ticks. */
  readonly cpuTicks: number
  readonly rssBytes: number
  readonly atMs: number
}

/** Clock ticks per second (`getconf CLK_TCK`), 100 when unknown. */
export const clockTicksPerSecond = Effect.gen(function*() {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const output = yield* spawner.string(ChildProcess.make("getconf", ["CLK_TCK"])).pipe(
    Effect.orElseSucceed(() => "100")
  )
  const ticks = Number(output.trim())
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100
})

export const sampleProcess = Effect.fn("ProcessSampler.sample")(function*(pid: number) {
  const fs = yield* FileSystem.FileSystem
  const fail = (cause: unknown) => new ProcessSampleError({ pid, reason: String(cause) })
  const stat = yield* fs.readFileString(`/proc/${pid}/stat`).pipe(Effect.mapError(fail))
  const status = yield* fs.readFileString(`/proc/${pid}/status`).pipe(Effect.mapError(fail))
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const cpuTicks = Number(fields[11]) + Number(fields[12])
  const rss = /VmRSS:\s+(\d+) kB/.exec(status)
  if (!Number.isFinite(cpuTicks) || rss === null) return yield* fail(`unparseable /proc/${pid} entries`)
  return { cpuTicks, rssBytes: Number(rss[1]) * 1024, atMs: Date.now() } satisfies ProcessSample
})

/** Percent of one core used between two samples. */
export const cpuPercent = (from: ProcessSample, to: ProcessSample, ticksPerSecond: number): number =>
  ((to.cpuTicks - from.cpuTicks) / ticksPerSecond) / ((to.atMs - from.atMs) / 1000) * 100
