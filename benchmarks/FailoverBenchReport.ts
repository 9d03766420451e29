/**
 * The failover benchmark's results: the JSON shape and its Markdown page.
 */
import { machineSection } from "./BenchMachine.ts"
import { percentile } from "./Stats.ts"

export interface FailoverRun {
  readonly kill: number
  /** The node killed (the one owning the most cameras). */
  readonly node: string
  /** Cameras it owned. */
  readonly cameras: number
  readonly camerasBefore: number
  /** Kill → online on a survivor, per camera that came back. */
  readonly recoveredMs: ReadonlyArray<number>
  readonly notRecovered: number
  /** Kill → the first survivor proved the node dead (null: its leases lapsed instead). */
  readonly detectedMs: number | null
  /** Kill → a survivor started the camera's pipeline (`connecting`), per camera. */
  readonly startedMs: ReadonlyArray<number>
  /** `connecting` → `online` on the survivor (ffmpeg start, RTSP session, first chunk), per camera. */
  readonly startToOnlineMs: ReadonlyArray<number>
}

export interface FailoverResults {
  readonly startedAt: string
  readonly cameras: number
  readonly nodes: number
  readonly kills: number
  readonly samples: number
  readonly notRecovered: number
  readonly recoveryMs: { readonly p50: number; readonly p95: number; readonly p99: number | null; readonly max: number | null }
  readonly budgetMs: number
  readonly goalMs: number
  readonly pass: boolean
  readonly runs: ReadonlyArray<FailoverRun>
  readonly machine: { readonly cores: number; readonly cpuModel: string; readonly kernel: string; readonly node: string; readonly ffmpeg: string }
}

const ms = (value: number | null) => value === null ? "—" : `${(value / 1000).toFixed(2)} s`
export const toMarkdown = (r: FailoverResults): string =>
  [
    "# Failover benchmark",
    "",
    `\`vms bench failover --cameras ${r.cameras} --kills ${r.kills}\`: ${r.nodes} nodes in cluster mode on one machine ` +
    "(local NATS and Postgres, the simulator as the cameras); the node owning the most cameras is SIGKILLed, and each of " +
    "its cameras is timed from the kill to the moment a surviving node reports it `online` again (its first live chunk " +
    "is in the playlist).",
    "",
    `Budget: p99 ≤ ${r.budgetMs / 1000} s (goal ${r.goalMs / 1000} s).`,
    "",
    "| kills | camera moves | not recovered | p50 | p95 | p99 | max | verdict |",
    "|---|---|---|---|---|---|---|---|",
    `| ${r.kills} | ${r.samples} | ${r.notRecovered} | ${ms(r.recoveryMs.p50)} | ${ms(r.recoveryMs.p95)} | ` +
    `${ms(r.recoveryMs.p99)} | ${ms(r.recoveryMs.max)} | **${r.pass ? "PASS" : "FAIL"}** |`,
    "",
    "## Kills",
    "",
    "Each kill in phases, from the kill: *proven dead* is when the first survivor proved the node dead and freed its " +
    "leases (— when they lapsed instead); *pipelines started* is when the survivors set the cameras `connecting` " +
    "(first and last); *online* is when their first live chunk was in the playlist; *start → online* is, per camera, " +
    "from `connecting` to `online` (ffmpeg start, RTSP session, first keyframe, first 1 s chunk).",
    "",
    "| # | node killed | its cameras | proven dead | pipelines started (first – last) | start → online p50 (max) | online p50 | online max | not recovered |",
    "|---|---|---|---|---|---|---|---|---|",
    ...r.runs.map((run) =>
      `| ${run.kill} | ${run.node} | ${run.cameras} of ${run.camerasBefore} | ${ms(run.detectedMs)} | ` +
      `${ms(percentile(run.startedMs, 0))} – ${ms(percentile(run.startedMs, 100))} | ` +
      `${ms(percentile(run.startToOnlineMs, 50))} (${ms(percentile(run.startToOnlineMs, 100))}) | ${ms(percentile(run.recoveredMs, 50))} | ` +
      `${ms(percentile(run.recoveredMs, 100))} | ${run.notRecovered} |`
    ),
    "",
    "## Where the time goes",
    "",
    "- Detection: every node asks each other runner's liveness subject on NATS every 0.25 s. A killed node's " +
    "connection is gone, so NATS answers *no responders*; the survivor then connects to the HTTP address the node " +
    "advertised, and a refused connect proves the process gone. It deletes the node's leases (against the revisions " +
    "it read) and its membership entry. A node cut off from NATS or frozen still accepts connections and is never " +
    "declared dead: its 4 s leases lapse instead.",
    "- Takeover: the survivors see the membership change within 0.25 s, recompute the assignment, take the freed " +
    "leases with a create (compare-and-set), and wake the cameras of the shards they took at once.",
    "- Restart: the survivors start one ffmpeg per moved camera: first the ffmpegs each node keeps started ahead " +
    "(`VMS_FFMPEG_WARM`, 12), which connect within milliseconds; the rest start cold, 40 ms apart (ffmpeg 5.1 from " +
    "Debian loads 215 shared libraries, ~0.15 s of CPU each start). ffmpeg connects without probing " +
    "(`-analyzeduration 0`), waits for the camera's next keyframe (0–1 s here) and closes its first 1 s chunk at the " +
    "keyframe after. Here 2 cores also run three nodes, the simulator and the other ffmpegs.",
    "",
    ...machineSection(r.machine, r.startedAt)
  ].join("\n")
