/**
 * The results of `vms bench ingest` as a Schema (written as `ingest.json`,
 * one run per camera count, so runs for several N accumulate in one file)
 * and their Markdown rendering (`ingest.md`: a row per N against the
 * budgets, the snapshot figures, what went wrong, and the method).
 */
import { Schema } from "effect"

const Latency = Schema.Struct({ p50: Schema.Number, p95: Schema.Number, max: Schema.Number })

const NotOnline = Schema.Struct({ cameraId: Schema.String, status: Schema.String, reason: Schema.NullOr(Schema.String) })

export const IngestRun = Schema.Struct({
  cameras: Schema.Int,
  startedAt: Schema.String,
  database: Schema.String,
  baselineSeconds: Schema.Number,
  warmupSeconds: Schema.Number,
  windowSeconds: Schema.Number,
  online: Schema.Struct({
    deadlineSeconds: Schema.Number,
    /** Seconds from the first POST until every camera was online; null when the deadline passed first. */
    secondsToAllOnline: Schema.NullOr(Schema.Number),
    atDeadline: Schema.Array(NotOnline),
    atEnd: Schema.Int
  }),
  node: Schema.Struct({
    baselineCpuPercent: Schema.Number,
    loadedCpuPercent: Schema.Number,
    cpuPercentPerCamera: Schema.Number,
    baselineHeapMegabytes: Schema.Number,
    loadedHeapMegabytes: Schema.Number,
    heapMegabytesPerCamera: Schema.Number,
    baselineRssMegabytes: Schema.Number,
    loadedRssMegabytes: Schema.Number
  }),
  ffmpeg: Schema.Struct({
    processes: Schema.Int,
    /** ffmpeg processes that appeared during the window (restarts). */
    startedInWindow: Schema.Int,
    cpuPercent: Schema.Number,
    cpuPercentPerCamera: Schema.Number,
    pssMegabytes: Schema.Number,
    pssMegabytesPerCamera: Schema.Number
  }),
  simulatorCpuPercent: Schema.Number,
  /** The whole machine (all processes), in percent of one core. */
  machineBusyPercent: Schema.Number,
  streams: Schema.Struct({
    sourceFps: Schema.Number,
    lowFpsBelow: Schema.Number,
    fpsMin: Schema.Number,
    fpsMedian: Schema.Number,
    notOnlineAtEnd: Schema.Array(Schema.String),
    lowFps: Schema.Array(Schema.String),
    stallsIncreased: Schema.Array(Schema.String),
    restartsIncreased: Schema.Array(Schema.String),
    stalled: Schema.Array(Schema.String)
  }),
  snapshot: Schema.Struct({
    cameraId: Schema.String,
    requests: Schema.Int,
    intervalMs: Schema.Number,
    validJpeg: Schema.Int,
    expectedWidth: Schema.Int,
    expectedHeight: Schema.Int,
    sizeMatches: Schema.Int,
    /** Requests that returned a different image than the one before: a fresh decode rather than the cached one. */
    freshImages: Schema.Int,
    latencyMs: Latency,
    freshLatencyMs: Latency,
    errors: Schema.Array(Schema.String)
  }),
  nodeLog: Schema.Struct({
    warnings: Schema.Int,
    errors: Schema.Int,
    messages: Schema.Array(Schema.Struct({ level: Schema.String, message: Schema.String, count: Schema.Int }))
  }),
  shutdown: Schema.Struct({
    exitCode: Schema.Union([Schema.Number, Schema.String]),
    stopSeconds: Schema.Number,
    ffmpegsLeft: Schema.Int
  }),
  budget: Schema.Struct({
    cpuPercentPerCamera: Schema.Number,
    heapMegabytesPerCamera: Schema.Number,
    stalled: Schema.Int,
    snapshotP95Ms: Schema.Number,
    ingestPass: Schema.Boolean,
    snapshotPass: Schema.Boolean
  }),
  machine: Schema.Struct({
    node: Schema.String,
    ffmpeg: Schema.String,
    cores: Schema.Int,
    cpuModel: Schema.String,
    kernel: Schema.String
  }),
  clip: Schema.Struct({ width: Schema.Int, height: Schema.Int, fps: Schema.Number, bitrateKbps: Schema.Number })
})
export type IngestRun = typeof IngestRun.Type

export const IngestResults = Schema.Struct({
  scenario: Schema.Literal("ingest"),
  /** Keyed by the number of cameras; rerunning an N replaces its entry. */
  runs: Schema.Record(Schema.String, IngestRun)
})
export type IngestResults = typeof IngestResults.Type

export const withRun = (previous: IngestResults | undefined, run: IngestRun): IngestResults => ({
  scenario: "ingest",
  runs: { ...previous?.runs, [`${run.cameras}`]: run }
})

const fixed = (value: number, digits: number) => value.toFixed(digits)
const verdict = (pass: boolean) => pass ? "**PASS**" : "**FAIL**"
const ids = (list: ReadonlyArray<string>) =>
  list.length === 0 ? "none" : list.length <= 12 ? list.join(", ") : `${list.slice(0, 12).join(", ")} … (+${list.length - 12})`

const mark = (pass: boolean) => pass ? "✓" : "✗"

const summaryRow = (run: IngestRun) => {
  const { budget, ffmpeg, node, online, streams } = run
  return `| ${run.cameras} | ${online.atEnd} | ` +
    `${fixed(node.cpuPercentPerCamera, 4)} ${mark(node.cpuPercentPerCamera <= budget.cpuPercentPerCamera)} | ` +
    `${fixed(node.heapMegabytesPerCamera, 3)} ${mark(node.heapMegabytesPerCamera <= budget.heapMegabytesPerCamera)} | ` +
    `${fixed(ffmpeg.cpuPercentPerCamera, 3)} | ${fixed(ffmpeg.pssMegabytesPerCamera, 2)} | ` +
    `${streams.stalled.length} ${mark(streams.stalled.length <= budget.stalled)} | ${verdict(budget.ingestPass)} |`
}

const detailRow = (run: IngestRun) => {
  const { ffmpeg, node, online } = run
  const toOnline = online.secondsToAllOnline === null ? `not all in ${fixed(online.deadlineSeconds, 0)} s` : `${fixed(online.secondsToAllOnline, 1)} s`
  return `| ${run.cameras} | ${run.startedAt} | ${run.database} | ${toOnline} | ${fixed(run.windowSeconds, 1)} | ` +
    `${fixed(node.baselineCpuPercent, 2)} → ${fixed(node.loadedCpuPercent, 2)} | ` +
    `${fixed(node.baselineHeapMegabytes, 1)} → ${fixed(node.loadedHeapMegabytes, 1)} | ` +
    `${fixed(node.baselineRssMegabytes, 0)} → ${fixed(node.loadedRssMegabytes, 0)} | ` +
    `${ffmpeg.processes} (+${ffmpeg.startedInWindow}) | ${fixed(ffmpeg.cpuPercent, 1)} | ${fixed(ffmpeg.pssMegabytes, 0)} | ` +
    `${fixed(run.simulatorCpuPercent, 1)} | ${fixed(run.machineBusyPercent, 0)} / ${run.machine.cores * 100} |`
}

const streamRow = (run: IngestRun) => {
  const { streams } = run
  return `| ${run.cameras} | ${fixed(streams.fpsMin, 2)} / ${fixed(streams.fpsMedian, 2)} | ${ids(streams.notOnlineAtEnd)} | ` +
    `${ids(streams.lowFps)} | ${ids(streams.stallsIncreased)} | ${ids(streams.restartsIncreased)} |`
}

const snapshotRow = (run: IngestRun) => {
  const { budget, snapshot } = run
  return `| ${run.cameras} | ${snapshot.cameraId} | ${snapshot.requests} every ${snapshot.intervalMs} ms | ` +
    `${snapshot.validJpeg} / ${snapshot.sizeMatches} (${snapshot.expectedWidth}x${snapshot.expectedHeight}) | ` +
    `${fixed(snapshot.latencyMs.p50, 1)} / ${fixed(snapshot.latencyMs.p95, 1)} / ${fixed(snapshot.latencyMs.max, 1)} | ` +
    `${snapshot.freshImages}: ${fixed(snapshot.freshLatencyMs.p50, 1)} / ${fixed(snapshot.freshLatencyMs.max, 1)} | ` +
    `${verdict(budget.snapshotPass)} |`
}

const findings = (run: IngestRun): ReadonlyArray<string> => {
  const lines: Array<string> = []
  for (const camera of run.online.atDeadline) {
    lines.push(`- N=${run.cameras}: \`${camera.cameraId}\` was ${camera.status} at the online deadline${camera.reason === null ? "" : ` (${camera.reason})`}`)
  }
  for (const error of run.snapshot.errors) lines.push(`- N=${run.cameras}: snapshot: ${error}`)
  for (const entry of run.nodeLog.messages) lines.push(`- N=${run.cameras}: node log ${entry.level} ×${entry.count}: ${entry.message}`)
  if (run.shutdown.exitCode !== 0 || run.shutdown.ffmpegsLeft > 0) {
    lines.push(`- N=${run.cameras}: node exit ${run.shutdown.exitCode} after SIGINT, ${run.shutdown.ffmpegsLeft} ffmpeg left running`)
  }
  return lines
}

export const toMarkdown = (results: IngestResults): string => {
  const runs = Object.values(results.runs).sort((a, b) => a.cameras - b.cameras)
  const first = runs[0]
  if (first === undefined) return "# Ingest benchmark\n\nNo runs yet.\n"
  const { budget, clip, machine } = first
  const problems = runs.flatMap(findings)
  return [
    "# Ingest benchmark",
    "",
    `\`vms bench ingest --cameras N\`: what a node costs per live RTSP camera (${clip.width}x${clip.height} ` +
    `${clip.fps} fps ~${Math.round(clip.bitrateKbps)} kbps H.264 from the simulator on the same machine, stream copy into ` +
    `1 s MPEG-TS chunks, no recording), and how fast it answers a snapshot.`,
    "",
    `Budgets: node overhead ≤ ${budget.cpuPercentPerCamera} % of one core and ≤ ${budget.heapMegabytesPerCamera} MB of heap per camera ` +
    `(ffmpeg excluded), ${budget.stalled} stalled streams; snapshot p95 ≤ ${budget.snapshotP95Ms} ms.`,
    "",
    `| cameras | online at end | node CPU % of a core / camera (≤ ${budget.cpuPercentPerCamera}) | ` +
    `node heap MB / camera (≤ ${budget.heapMegabytesPerCamera}) | ffmpeg CPU % of a core / camera | ffmpeg PSS MB / camera | ` +
    `stalled (${budget.stalled}) | verdict |`,
    "|---|---|---|---|---|---|---|---|",
    ...runs.map(summaryRow),
    "",
    "## Totals",
    "",
    "Node figures are idle baseline → loaded; CPU in % of one core.",
    "",
    "| cameras | run | database | all online after | window s | node CPU % | node heap MB (median) | node RSS MB | ffmpeg processes (+started in window) | ffmpeg CPU % | ffmpeg PSS MB | simulator CPU % | machine busy % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...runs.map(detailRow),
    "",
    "## Streams",
    "",
    `A stream is stalled when its camera is not \`online\` at the end, its \`vms_camera_fps\` fell below ` +
    `${first.streams.lowFpsBelow} (half the source's ${first.streams.sourceFps} fps) in any sample during the window, or its ` +
    "`vms_pipeline_stalls_total` or `vms_pipeline_restarts_total` grew during the window.",
    "",
    "| cameras | fps min / median | not online at end | low fps | stall counter grew | restart counter grew |",
    "|---|---|---|---|---|---|",
    ...runs.map(streamRow),
    "",
    "## Snapshot",
    "",
    "Sequential `GET /api/v1/cameras/{id}/snapshot` on one running camera while all N cameras ingest, timed from request " +
    "to last byte. A camera that is asked for snapshots decodes the first frame of each new 1 s chunk in the background " +
    "for the next 10 s, and answers with the newest decoded picture (at most 2 s old); only a request with no recent " +
    "picture waits for a decode (one short ffmpeg run on the newest chunk). The first request of a run is such a cold " +
    "one, and it is in the figures. \"Fresh\" are the requests that got a different picture than the request before; " +
    "with 100 ms between requests the run spans about ten chunks.",
    "",
    "| cameras | camera | requests | valid JPEG / right size | latency ms p50 / p95 / max | fresh: count, ms p50 / max | p95 ≤ 150 ms |",
    "|---|---|---|---|---|---|---|",
    ...runs.map(snapshotRow),
    "",
    "## Faults",
    "",
    ...(problems.length === 0 ? ["None: every camera came online before the deadline, the node logged no warnings or errors, " +
      "and after SIGINT it exited 0 with no ffmpeg left."] : problems),
    "",
    "## Machine",
    "",
    `- ${machine.cores} cores (${machine.cpuModel}), Linux ${machine.kernel}`,
    `- Node ${machine.node}`,
    `- ${machine.ffmpeg}`,
    "",
    "## Method",
    "",
    "1. Start the simulator (`vms simulate --cameras N`) as a process of its own, so its CPU is not counted as the node's.",
    "2. Start the node (`vms start`, `VMS_LOG_LEVEL=warn`) on a free port with an empty data dir and a fresh database on " +
    "the local Postgres (embedded Postgres when none answers), and wait for `/health/ready` = 200.",
    "3. Idle baseline: after 3 s of settling, the node's CPU over the baseline period (utime + stime of the node process " +
    "from `/proc/<pid>/stat`, all its threads, none of its children) and the median of `nodejs_heap_size_used_bytes` " +
    "scraped from `/metrics` every 5 s (a scrape costs the node in proportion to its cameras; Prometheus scrapes every 15–60 s). No forced GC.",
    "4. Register cameras `cam0 … cam<N-1>` with `POST /api/v1/cameras` (8 at a time) and wait until `vms_cameras{status=\"online\"}` " +
    "= N, with a deadline of 20 s + 0.2 s per camera. Cameras not online then are listed; the run goes on and counts them as stalled.",
    "5. Warm up (45 s by default: for the first tens of seconds after the cameras start, V8 is still compiling the hot " +
    "paths and the node costs about a third more; the budget is about the steady state), then measure over the window: the node's CPU (same as the baseline) and heap (median of 5 s scrapes); " +
    "every second the CPU ticks of each ffmpeg whose parent is the node (summed over consecutive samples of the same pid, " +
    "so a restarted ffmpeg counts from its first sample); every 5 s the PSS of each such ffmpeg (`/proc/<pid>/smaps_rollup`, " +
    "shared pages split among the sharers), summed, median over the samples. Per-camera node figures are (loaded − baseline) / N; " +
    "per-camera ffmpeg figures are total / N.",
    "6. Stalled streams from `/metrics` samples during the window and each camera's `/status` at its end (see Streams).",
    "7. Snapshot: 100 sequential requests on `cam0` while everything runs; each answer must be 200, start with FF D8, end with " +
    "FF D9 and have a SOF frame size equal to the clip's.",
    "8. Stop the node with SIGINT, check that no ffmpeg is left under its data dir, stop the simulator, drop the database.",
    "",
    "Other processes on the machine are not stopped; the machine busy column (all processes, % of one core, out of " +
    "100 × cores) shows how loaded the box was during the window.",
    ""
  ].join("\n")
}
