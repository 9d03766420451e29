/**
 * The measurement window of `vms bench ingest`: samples the node process,
 * its ffmpeg children, the simulator and the machine from /proc, and the
 * node's `/metrics`, for a number of seconds, and answers the totals and the
 * cameras whose streams misbehaved. Per-camera arithmetic and budgets are
 * the scenario's (IngestBench).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import { metricByLabel, metricValue, type MetricSample, scrapeMetrics } from "./NodeUnderTest.ts"
import { cpuPercent, machineBusyPercent, pssBytes, sampleChildren, sampleMachine, sampleProcess } from "./ProcessSampler.ts"
import { median } from "./Stats.ts"

export interface WindowMeasurement {
  readonly seconds: number
  readonly nodeCpuPercent: number
  /** Median of `nodejs_heap_size_used_bytes` over the scrapes. */
  readonly heapBytes: number
  readonly nodeRssBytes: number
  /** ffmpeg children of the node at the end of the window. */
  readonly ffmpegProcesses: number
  readonly ffmpegStarted: number
  readonly ffmpegCpuPercent: number
  /** Median over the PSS samples of the sum over all ffmpeg children. */
  readonly ffmpegPssBytes: number
  readonly simulatorCpuPercent: number
  readonly machineBusyPercent: number
  /** Lowest `vms_camera_fps` sample of any camera, and the median of the cameras' mean fps. */
  readonly fpsMin: number
  readonly fpsMedian: number
  readonly lowFps: ReadonlyArray<string>
  readonly stallsIncreased: ReadonlyArray<string>
  readonly restartsIncreased: ReadonlyArray<string>
}

/**
 * How often the bench scrapes `/metrics`: each scrape costs the node CPU in
 * proportion to its cameras (Prometheus scrapes every 15–60 s in practice).
 */
export const scrapeEverySeconds = 5
const pssEverySeconds = 5

/** An ffmpeg whose arguments are an ingest run's (a waiting one shows `-version vms-warm-start …` until taken). */
const isIngest = (pid: number): boolean => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("\0seg_%d.ts")
  } catch {
    return false
  }
}

export const measureWindow = Effect.fn("IngestWindow.measure")(function*(options: {
  readonly nodePid: number
  readonly simulatorPid: number
  readonly baseUrl: string
  readonly cameraIds: ReadonlyArray<string>
  readonly seconds: number
  readonly ticksPerSecond: number
  readonly lowFpsBelow: number
}) {
  const { baseUrl, cameraIds, nodePid } = options
  /**
   * CPU ticks per ingest ffmpeg of the node: those pulling a camera, not the few it keeps started
   * and waiting (`VMS_FFMPEG_WARM`; a fixed cost of the node, not of its cameras).
   */
  const ffmpegTicks = sampleChildren(nodePid).pipe(
    Effect.map((children) => new Map(children.filter((c) => c.name === "ffmpeg" && isIngest(c.pid)).map((c) => [c.pid, c.cpuTicks])))
  )
  const ffmpegPss = (pids: Iterable<number>) =>
    Effect.forEach(pids, (pid) => pssBytes(pid).pipe(Effect.orElseSucceed(() => 0)), { concurrency: 16 }).pipe(
      Effect.map((sizes) => sizes.reduce((sum, size) => sum + size, 0))
    )

  const heap: Array<number> = []
  const rss: Array<number> = []
  const pss: Array<number> = []
  const fps = new Map<string, Array<number>>(cameraIds.map((id) => [id, []]))
  const record = (samples: ReadonlyArray<MetricSample>) => {
    const heapUsed = metricValue(samples, "nodejs_heap_size_used_bytes")
    if (heapUsed !== undefined) heap.push(heapUsed)
    const current = metricByLabel(samples, "vms_camera_fps", "camera")
    for (const [id, values] of fps) values.push(current.get(id) ?? 0)
  }

  const metricsFrom = yield* scrapeMetrics(baseUrl)
  record(metricsFrom)
  const nodeFrom = yield* sampleProcess(nodePid)
  const simulatorFrom = yield* sampleProcess(options.simulatorPid)
  const machineFrom = yield* sampleMachine()
  let previous = yield* ffmpegTicks
  const firstTicksAt = Date.now()
  let lastTicksAt = firstTicksAt
  const seen = new Set(previous.keys())
  let started = 0
  let ffmpegTicksTotal = 0
  // Fixed rate: sample k happens k seconds after the first, however long sampling takes.
  for (let second = 1; second <= options.seconds; second++) {
    yield* Effect.sleep(Math.max(0, firstTicksAt + second * 1000 - Date.now()))
    const current = yield* ffmpegTicks
    lastTicksAt = Date.now()
    for (const [pid, ticks] of current) {
      const before = previous.get(pid)
      if (before !== undefined) ffmpegTicksTotal += ticks - before
      else if (!seen.has(pid)) {
        seen.add(pid)
        started++
      }
    }
    previous = current
    if (second % pssEverySeconds === 1 || options.seconds < pssEverySeconds) pss.push(yield* ffmpegPss(current.keys()))
    if (second % scrapeEverySeconds === 0 && second < options.seconds) {
      record(yield* scrapeMetrics(baseUrl))
      rss.push((yield* sampleProcess(nodePid)).rssBytes)
    }
  }
  const nodeTo = yield* sampleProcess(nodePid)
  const simulatorTo = yield* sampleProcess(options.simulatorPid)
  const machineTo = yield* sampleMachine()
  const metricsTo = yield* scrapeMetrics(baseUrl)
  record(metricsTo)
  rss.push(nodeTo.rssBytes)

  const increased = (name: string) => {
    const from = metricByLabel(metricsFrom, name, "camera")
    const to = metricByLabel(metricsTo, name, "camera")
    return cameraIds.filter((id) => (to.get(id) ?? 0) > (from.get(id) ?? 0))
  }
  const means = [...fps.values()].map((values) => values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length))
  return {
    seconds: (nodeTo.atMs - nodeFrom.atMs) / 1000,
    nodeCpuPercent: cpuPercent(nodeFrom, nodeTo, options.ticksPerSecond),
    heapBytes: median(heap),
    nodeRssBytes: median(rss),
    ffmpegProcesses: previous.size,
    ffmpegStarted: started,
    ffmpegCpuPercent: (ffmpegTicksTotal / options.ticksPerSecond) / ((lastTicksAt - firstTicksAt) / 1000) * 100,
    ffmpegPssBytes: median(pss),
    simulatorCpuPercent: cpuPercent(simulatorFrom, simulatorTo, options.ticksPerSecond),
    machineBusyPercent: machineBusyPercent(machineFrom, machineTo, options.ticksPerSecond),
    fpsMin: Math.min(...[...fps.values()].flat()),
    fpsMedian: median(means),
    lowFps: cameraIds.filter((id) => fps.get(id)!.some((value) => value < options.lowFpsBelow)),
    stallsIncreased: increased("vms_pipeline_stalls_total"),
    restartsIncreased: increased("vms_pipeline_restarts_total")
  } satisfies WindowMeasurement
})
