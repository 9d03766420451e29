/**
 * CPU time and memory of Linux processes, read from `/proc`, for benchmarks
 * that measure a process alone: CPU ticks and RSS of one process, its PSS
 * (`smaps_rollup`: shared pages divided among the processes sharing them, so
 * summing PSS over many ffmpegs does not count their shared code N times),
 * the children of a process with their command names, and the whole
 * machine's busy time.
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

/** Proportional set size of a process, from `/proc/<pid>/smaps_rollup`. */
export const pssBytes = Effect.fn("ProcessSampler.pss")(function*(pid: number) {
  const fs = yield* FileSystem.FileSystem
  const fail = (cause: unknown) => new ProcessSampleError({ pid, reason: String(cause) })
  const rollup = yield* fs.readFileString(`/proc/${pid}/smaps_rollup`).pipe(Effect.mapError(fail))
  const pss = /^Pss:\s+(\d+) kB/m.exec(rollup)
  if (pss === null) return yield* fail(`no Pss line in /proc/${pid}/smaps_rollup`)
  return Number(pss[1]) * 1024
})

export interface ChildSample {
  readonly pid: number
  /** The kernel's command name (the parenthesised field of `stat`), e.g. `ffmpeg`. */
  readonly name: string
  /** utime + stime in clock ticks. */
  readonly cpuTicks: number
}

/** Name, parent and CPU ticks from one `/proc/<pid>/stat` line. */
const parseStat = (pid: number, stat: string) => {
  const close = stat.lastIndexOf(")")
  // Fields after the command name: state (3), ppid (4), …, utime (14), stime (15).
  const fields = stat.slice(close + 2).split(" ")
  return {
    pid,
    name: stat.slice(stat.indexOf("(") + 1, close),
    ppid: Number(fields[1]),
    cpuTicks: Number(fields[11]) + Number(fields[12])
  }
}

/**
 * The direct children of `pid` with their CPU ticks: the union of
 * `/proc/<pid>/task/<tid>/children` over its threads (or a scan of every
 * process's parent where the kernel lacks that file), then one read of each
 * child's `stat`. Children that exit meanwhile are left out.
 */
export const sampleChildren = Effect.fn("ProcessSampler.children")(function*(pid: number) {
  const fs = yield* FileSystem.FileSystem
  const readOrEmpty = (file: string) => fs.readFileString(file).pipe(Effect.orElseSucceed(() => ""))
  const tasks = yield* fs.readDirectory(`/proc/${pid}/task`).pipe(
    Effect.mapError((cause) => new ProcessSampleError({ pid, reason: String(cause) }))
  )
  const statOf = (child: number) => Effect.map(readOrEmpty(`/proc/${child}/stat`), (stat) => stat === "" ? undefined : parseStat(child, stat))
  let stats: ReadonlyArray<ReturnType<typeof parseStat> | undefined>
  if (yield* fs.exists(`/proc/${pid}/task/${pid}/children`).pipe(Effect.orElseSucceed(() => false))) {
    const lists = yield* Effect.forEach(tasks, (tid) => readOrEmpty(`/proc/${pid}/task/${tid}/children`), { concurrency: 16 })
    const pids = new Set(lists.flatMap((list) => list.split(" ").filter((child) => /^\d+$/.test(child)).map(Number)))
    stats = yield* Effect.forEach(pids, statOf, { concurrency: 16 })
  } else {
    const entries = (yield* fs.readDirectory("/proc").pipe(Effect.orElseSucceed(() => []))).filter((e) => /^\d+$/.test(e))
    stats = (yield* Effect.forEach(entries, (entry) => statOf(Number(entry)), { concurrency: 16 })).filter((s) => s?.ppid === pid)
  }
  return stats.filter((s) => s !== undefined).map(({ cpuTicks, name, pid }): ChildSample => ({ pid, name, cpuTicks }))
})

export interface MachineSample {
  /** Busy ticks (user, nice, system, irq, softirq) of all cores together, from `/proc/stat`. */
  readonly busyTicks: number
  readonly atMs: number
}

export const sampleMachine = Effect.fn("ProcessSampler.machine")(function*() {
  const fs = yield* FileSystem.FileSystem
  const stat = yield* fs.readFileString("/proc/stat").pipe(
    Effect.mapError((cause) => new ProcessSampleError({ pid: 0, reason: String(cause) }))
  )
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const [user, nice, system, , , irq, softirq] = stat.split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  return { busyTicks: user! + nice! + system! + irq! + softirq!, atMs: Date.now() } satisfies MachineSample
})

/** Percent of one core the whole machine was busy between two samples (up to 100 × cores). */
export const machineBusyPercent = (from: MachineSample, to: MachineSample, ticksPerSecond: number): number =>
  ((to.busyTicks - from.busyTicks) / ticksPerSecond) / ((to.atMs - from.atMs) / 1000) * 100
