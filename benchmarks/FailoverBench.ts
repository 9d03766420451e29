/**
 * `vms bench failover`: how long a camera is down when its node dies. Runs
 * the simulator and three nodes as processes (cluster mode: the local NATS
 * and Postgres), registers the cameras, then repeatedly SIGKILLs the node
 * owning the most cameras and times, for each of its cameras, the moment a
 * survivor reports it `online` again (the owner's `updatedAt` on the
 * `camera_status_update` event, pushed over JSON-RPC to a WebSocket on every
 * node), from the kill. The killed node is restarted and the cluster left to
 * rebalance before the next kill. Writes `failover.json` and `failover.md`.
 */
import { DateTime, Effect, FileSystem, Path, Schema } from "effect"
import { clusterBenchFields, startBenchCluster } from "./BenchCluster.ts"
import { machineFacts } from "./BenchMachine.ts"
import { type FailoverResults, type FailoverRun, toMarkdown } from "./FailoverBenchReport.ts"
import { percentile } from "./Stats.ts"

export class FailoverBenchOptions extends Schema.Class<FailoverBenchOptions>("vms/benchmarks/FailoverBenchOptions")({
  ...clusterBenchFields,
  kills: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })).pipe(Schema.withDecodingDefaultKey(Effect.succeed(10)))
}) {}

export class FailoverBenchError extends Schema.TaggedError<FailoverBenchError>()("FailoverBenchError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

const nodeIds = ["f1", "f2", "f3"] as const

/** Kill → each survivor's "runner died" log line (its proof of the death), from the node's JSON logs. */
const diedLogged = (lines: ReadonlyArray<string>, killedAt: number): Array<number> =>
  lines.flatMap((line) => {
    if (!line.includes("runner died")) return []
    try {
      const at = Date.parse((JSON.parse(line) as { timestamp: string }).timestamp)
      return at >= killedAt ? [at - killedAt] : []
    } catch {
      return []
    }
  })
/** A camera not back within this long counts as not recovered. */
const giveUpMs = 30_000

export const runFailoverBench = Effect.fn("FailoverBench.run")(function*(input: typeof FailoverBenchOptions.Encoded) {
  const options = yield* Schema.decodeUnknownEffect(FailoverBenchOptions)(input).pipe(
    Effect.mapError((error) => new FailoverBenchError({ reason: error.message }))
  )
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failure = (cause: unknown) => new FailoverBenchError({ reason: String(cause) })
  const startedAt = DateTime.formatIso(yield* DateTime.now)
  const { busiest, events, ffmpeg, launch, nodes, remove } = yield* startBenchCluster({ ...options, nodeIds }).pipe(
    Effect.mapError((error) => new FailoverBenchError({ reason: error.reason }))
  )

  const runs: Array<FailoverRun> = []
  for (let kill = 1; kill <= options.kills; kill++) {
    const { cameras: moved, camerasBefore, nodeId: victim } = yield* busiest.pipe(
      Effect.mapError((error) => new FailoverBenchError({ reason: error.reason }))
    )
    const { node } = nodes.get(victim)!
    const killedAt = Date.now()
    process.kill(node.pid, "SIGKILL")
    yield* remove(victim)
    // Each moved camera: first `connecting` (its pipeline starts) and first `online` from a survivor after the kill.
    const downMs = new Map<string, number>()
    const connectingMs = new Map<string, number>()
    while (downMs.size < moved.length && Date.now() - killedAt < giveUpMs) {
      for (const event of events) {
        if (event.nodeId === victim || !moved.includes(event.cameraId)) continue
        const at = Date.parse(event.updatedAt)
        if (at < killedAt) continue
        const seen = event.status === "online" ? downMs : event.status === "connecting" ? connectingMs : undefined
        if (seen !== undefined && !seen.has(event.cameraId)) seen.set(event.cameraId, at - killedAt)
      }
      yield* Effect.sleep("50 millis")
    }
    const times = moved.map((id) => downMs.get(id) ?? Infinity)
    const startedMs = moved.flatMap((id) => connectingMs.get(id) ?? [])
    const startToOnlineMs = moved.flatMap((id) => {
      const started = connectingMs.get(id)
      const online = downMs.get(id)
      return started === undefined || online === undefined ? [] : [online - started]
    })
    const detectedMs = [...nodes.values()].flatMap(({ node }) => diedLogged(node.logLines(), killedAt))
    // What the survivors warned about meanwhile (they log at warn): the first place to look at an outlier.
    for (const [id, { node }] of nodes) {
      const warnings = node.logLines().filter((line) => line.startsWith("{") && !line.includes("runner died") && Date.parse(/"timestamp":"([^"]+)"/.exec(line)?.[1] ?? "") >= killedAt)
      if (warnings.length > 0) yield* Effect.logInfo("survivor warnings").pipe(Effect.annotateLogs({ kill, node: id, lines: warnings.slice(0, 20).join("\n") }))
    }
    runs.push({
      kill,
      node: victim,
      cameras: moved.length,
      camerasBefore,
      recoveredMs: times.filter(Number.isFinite),
      notRecovered: times.filter((t) => !Number.isFinite(t)).length,
      detectedMs: detectedMs.length === 0 ? null : Math.min(...detectedMs),
      startedMs,
      startToOnlineMs
    })
    yield* Effect.logInfo("kill measured").pipe(Effect.annotateLogs({
      kill, node: victim, cameras: moved.length, p50Ms: percentile(times, 50), maxMs: percentile(times, 100)
    }))
    yield* launch(victim).pipe(Effect.mapError((error) => new FailoverBenchError({ reason: error.message })))
  }

  const all = runs.flatMap((run) => run.recoveredMs)
  const notRecovered = runs.reduce((sum, run) => sum + run.notRecovered, 0)
  const result = {
    startedAt,
    cameras: options.cameras,
    nodes: nodeIds.length,
    kills: runs.length,
    samples: all.length,
    notRecovered,
    recoveryMs: { p50: percentile(all, 50), p95: percentile(all, 95), p99: notRecovered > 0 ? null : percentile(all, 99), max: notRecovered > 0 ? null : percentile(all, 100) },
    budgetMs: 5_000,
    goalMs: 3_000,
    pass: notRecovered === 0 && percentile(all, 99) <= 5_000,
    runs,
    machine: machineFacts(ffmpeg)
  } satisfies FailoverResults
  yield* fs.makeDirectory(options.resultsDir, { recursive: true }).pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "failover.json"), JSON.stringify(result, null, 2) + "\n").pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "failover.md"), toMarkdown(result)).pipe(Effect.mapError(failure))
  yield* Effect.logInfo("failover benchmark done").pipe(Effect.annotateLogs({ ...result.recoveryMs, pass: result.pass }))
  return result
})
