/**
 * The failover benchmark's results: the JSON shape and its Markdown page.
 */
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
    "| # | node killed | its cameras | p50 | max | not recovered |",
    "|---|---|---|---|---|---|",
    ...r.runs.map((run) =>
      `| ${run.kill} | ${run.node} | ${run.cameras} of ${run.camerasBefore} | ${ms(percentile(run.recoveredMs, 50))} | ` +
      `${ms(percentile(run.recoveredMs, 100))} | ${run.notRecovered} |`
    ),
    "",
    "## Where the time goes",
    "",
    "- Detection: a node's shard leases and membership key live in NATS KV buckets with max_age 2.5 s, renewed every " +
    "second, the membership key after the leases; a dead node's leases lapse 1.5–2.5 s after the kill, and a survivor " +
    "reads the membership every 0.3 s.",
    "- Takeover: the survivors recompute the assignment, take the lapsed leases with a create (compare-and-set), and wake " +
    "the cameras of the shards they took at once (the fleet keeper's 15 s pass is only the safety net).",
    "- Restart: ffmpeg connects without probing (`-analyzeduration 0`), and a camera is `online` when its first 1 s chunk " +
    "closes, at its second keyframe (keyframe every 1 s here).",
    "",
    "## Machine",
    "",
    `- ${r.machine.cores} cores (${r.machine.cpuModel}), Linux ${r.machine.kernel}`,
    `- Node ${r.machine.node}`,
    `- ${r.machine.ffmpeg}`,
    `- run started ${r.startedAt}`,
    ""
  ].join("\n")
