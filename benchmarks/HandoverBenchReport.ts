/**
 * The handover benchmark's results: the JSON shape and its Markdown page.
 */
import { machineSection } from "./BenchMachine.ts"
import { percentile } from "./Stats.ts"

export interface HandoverRun {
  readonly stop: number
  /** The node stopped with SIGTERM (the one owning the most cameras). */
  readonly node: string
  /** Cameras it owned. */
  readonly cameras: number
  readonly camerasBefore: number
  /** Per camera moved: live media no node listed, from the end of the last chunk before the new owner's first. */
  readonly mediaGapMs: ReadonlyArray<number>
  /** Per camera moved: from the chunk before the gap being listed to the new owner's first chunk being listed. */
  readonly waitMs: ReadonlyArray<number>
  /** Per camera moved: chunks of the leaver's that the new owner listed before its own (the handed-over tail). */
  readonly tailChunks: ReadonlyArray<number>
  /** Per camera: the signal → `online` on its new owner. */
  readonly onlineMs: ReadonlyArray<number>
  /** Cameras whose new owner listed no chunk of its own in time. */
  readonly notMoved: number
  readonly exitCode: number | string
  readonly stopSeconds: number
  /** ffmpeg processes left under the stopped node's data dir. */
  readonly ffmpegsLeft: number
}

export interface HandoverResults {
  readonly startedAt: string
  readonly cameras: number
  readonly nodes: number
  readonly stops: number
  readonly samples: number
  readonly notMoved: number
  /** Moves whose new owner did not go on from the leaver's tail. */
  readonly withoutTail: number
  readonly mediaGapMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
  /** Moves with a media gap above the budget. */
  readonly overBudget: number
  readonly budgetMs: number
  readonly pass: boolean
  readonly runs: ReadonlyArray<HandoverRun>
  readonly machine: { readonly cores: number; readonly cpuModel: string; readonly kernel: string; readonly node: string; readonly ffmpeg: string }
}

const s = (value: number) => Number.isFinite(value) ? `${(value / 1000).toFixed(2)} s` : "—"

export const toMarkdown = (r: HandoverResults): string =>
  [
    "# Handover benchmark",
    "",
    `\`vms bench handover --cameras ${r.cameras} --stops ${r.stops}\`: ${r.nodes} nodes in cluster mode on one machine ` +
    "(local NATS and Postgres, the simulator as the cameras, GOP 1 s); the node owning the most cameras is stopped with " +
    "SIGTERM, and every node's live playlist of each of its cameras is read every 0.1 s. The *media gap* of a camera is " +
    "the live video no node listed: from the end of the last chunk listed before the new owner's own first chunk (the " +
    "leaver's last chunk, which the new owner lists too, from the tail handed over) to the start of that first chunk, " +
    "in wall-clock time (`#EXT-X-PROGRAM-DATE-TIME`).",
    "",
    `Budget: every move ≤ ${r.budgetMs / 1000} s.`,
    "",
    "| stops | camera moves | not moved | without tail | p50 | p90 | p99 | max | over budget | verdict |",
    "|---|---|---|---|---|---|---|---|---|---|",
    `| ${r.stops} | ${r.samples} | ${r.notMoved} | ${r.withoutTail} | ${s(r.mediaGapMs.p50)} | ${s(r.mediaGapMs.p90)} | ` +
    `${s(r.mediaGapMs.p99)} | ${s(r.mediaGapMs.max)} | ${r.overBudget} | **${r.pass ? "PASS" : "FAIL"}** |`,
    "",
    "## Stops",
    "",
    "*Tail* is the fewest chunks of the leaver's a new owner listed before its own (0: it started anew); *online* " +
    "is from the signal to the camera's `online` status on its new owner (its first own chunk); *exit* is how long " +
    "the stopped node took to exit.",
    "",
    "| # | node stopped | its cameras | gap p50 | gap max | tail (fewest) | online p50 (max) | exit | ffmpegs left |",
    "|---|---|---|---|---|---|---|---|---|",
    ...r.runs.map((run) =>
      `| ${run.stop} | ${run.node} | ${run.cameras} of ${run.camerasBefore} | ${s(percentile(run.mediaGapMs, 50))} | ` +
      `${s(percentile(run.mediaGapMs, 100))} | ${run.tailChunks.length === 0 ? "—" : Math.min(...run.tailChunks)} | ` +
      `${s(percentile(run.onlineMs, 50))} (${s(percentile(run.onlineMs, 100))}) | ${run.stopSeconds.toFixed(2)} s | ${run.ffmpegsLeft} |`
    ),
    "",
    "## Where the time goes",
    "",
    "- The leaver leaves the membership at once and stops each camera's ffmpeg 0.7 s before the camera's next " +
    "keyframe (it knows the keyframe times from the chunks ffmpeg closed; until then the camera's video goes on " +
    "here). ffmpeg closes the chunk it was writing; as soon as it has exited and the camera's live tail (its last 3 " +
    "chunks and their playlist entries) is saved in NATS, the camera's shard is released and the release announced " +
    "on NATS: each camera goes on its own, not after the leaver's last one.",
    "- The survivors answer the leaver's shards as theirs at once, so the cameras' actors start while the leaver " +
    "is still stopping and wait at the ownership fence; the fence opens the moment a shard's lease is taken " +
    "(right after its release). A survivor keeps ffmpegs started ahead (`VMS_FFMPEG_WARM`, 12), so a moved " +
    "camera's RTSP session opens within milliseconds instead of after ffmpeg's 0.1–1 s start-up; its chunks are " +
    "numbered on from the leaver's tail.",
    "- The new owner's first chunk starts at the camera's next keyframe. When it plays within the 0.7 s before that " +
    "keyframe, the gap is those 0.7 s (a little less: each chunk's time is stamped when the node lists it); when it " +
    "plays later, one keyframe interval more (1 s here, a camera's GOP elsewhere). *Online* counts from the signal, " +
    "so it includes the time the leaver kept each camera running.",
    "",
    ...machineSection(r.machine, r.startedAt)
  ].join("\n")
