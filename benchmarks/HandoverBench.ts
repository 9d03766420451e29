/**
 * `vms bench handover`: how long a camera's live stream is interrupted when
 * its node is stopped with SIGTERM (an orchestrator's rolling restart, a
 * drain). Three nodes in cluster mode on one machine (BenchCluster); the
 * node owning the most cameras is stopped, and for each of its cameras the
 * live playlists of every node are watched (LiveTimeline): the media gap is
 * the live video no node listed, from the end of the last chunk listed
 * before the new owner's own first chunk to the start of that chunk. The
 * stopped node is started again and the cluster left to rebalance before the
 * next stop. Writes `handover.json` and `handover.md`.
 */
import { DateTime, Effect, Fiber, FileSystem, Path, Schema } from "effect"
import { clusterBenchFields, startBenchCluster } from "./BenchCluster.ts"
import { machineFacts } from "./BenchMachine.ts"
import { type HandoverResults, type HandoverRun, toMarkdown } from "./HandoverBenchReport.ts"
import { interruption, watchLive } from "./LiveTimeline.ts"
import { percentile } from "./Stats.ts"

export class HandoverBenchOptions extends Schema.Class<HandoverBenchOptions>("vms/benchmarks/HandoverBenchOptions")({
  ...clusterBenchFields,
  stops: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })).pipe(Schema.withDecodingDefaultKey(Effect.succeed(10)))
}) {}

export class HandoverBenchError extends Schema.TaggedError<HandoverBenchError>()("HandoverBenchError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

const nodeIds = ["h1", "h2", "h3"] as const
/** A camera whose new owner has listed no chunk of its own within this long counts as not moved. */
const giveUpMs = 30_000
/** Every node's playlist of each moved camera is read this often. */
const pollMs = 100

export const runHandoverBench = Effect.fn("HandoverBench.run")(function*(input: typeof HandoverBenchOptions.Encoded) {
  const options = yield* Schema.decodeUnknownEffect(HandoverBenchOptions)(input).pipe(
    Effect.mapError((error) => new HandoverBenchError({ reason: error.message }))
  )
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failure = (cause: { readonly message: string }) => new HandoverBenchError({ reason: cause.message })
  const startedAt = DateTime.formatIso(yield* DateTime.now)
  const { busiest, events, ffmpeg, launch, nodes, remove } = yield* startBenchCluster({ ...options, nodeIds }).pipe(
    Effect.mapError(failure)
  )

  const runs: Array<HandoverRun> = []
  for (let stop = 1; stop <= options.stops; stop++) {
    const { cameras: moved, camerasBefore, nodeId: leaver } = yield* busiest.pipe(Effect.mapError(failure))
    const { node } = nodes.get(leaver)!
    const run = yield* Effect.scoped(Effect.gen(function*() {
      const timeline = yield* watchLive([...nodes].map(([id, { node }]) => ({ id, baseUrl: node.baseUrl })), moved, pollMs)
      // A few chunks listed on the leaver first.
      yield* Effect.sleep("3 seconds")
      const signalAt = Date.now()
      const stopping = yield* Effect.forkChild(node.stopWith("SIGTERM"))
      const moves = () => moved.map((cameraId) => interruption(timeline, cameraId, leaver, signalAt))
      while (moves().some((move) => move === undefined) && Date.now() - signalAt < giveUpMs) yield* Effect.sleep("100 millis")
      const stopped = yield* Fiber.join(stopping)
      yield* timeline.stop
      const done = moves().filter((move) => move !== undefined)
      const onlineMs = moved.flatMap((cameraId) => {
        const online = events.find((e) =>
          e.cameraId === cameraId && e.status === "online" && e.nodeId !== leaver && Date.parse(e.updatedAt) >= signalAt
        )
        return online === undefined ? [] : [Date.parse(online.updatedAt) - signalAt]
      })
      return {
        stop,
        node: leaver,
        cameras: moved.length,
        camerasBefore,
        mediaGapMs: done.map((move) => move.mediaGapMs),
        waitMs: done.map((move) => move.waitMs),
        tailChunks: done.map((move) => move.tailChunks),
        onlineMs,
        notMoved: moved.length - done.length,
        exitCode: stopped.exitCode,
        stopSeconds: stopped.stopSeconds,
        ffmpegsLeft: stopped.ffmpegsLeft
      } satisfies HandoverRun
    }))
    runs.push(run)
    yield* Effect.logInfo("stop measured").pipe(Effect.annotateLogs({
      stop,
      node: leaver,
      cameras: moved.length,
      gapP50Ms: percentile(run.mediaGapMs, 50),
      gapMaxMs: percentile(run.mediaGapMs, 100)
    }))
    yield* remove(leaver)
    yield* launch(leaver).pipe(Effect.mapError(failure))
  }

  const gaps = runs.flatMap((run) => run.mediaGapMs)
  const notMoved = runs.reduce((sum, run) => sum + run.notMoved, 0)
  const withoutTail = runs.reduce((sum, run) => sum + run.tailChunks.filter((n) => n === 0).length, 0)
  const result = {
    startedAt,
    cameras: options.cameras,
    nodes: nodeIds.length,
    stops: runs.length,
    samples: gaps.length,
    notMoved,
    withoutTail,
    mediaGapMs: {
      p50: percentile(gaps, 50),
      p90: percentile(gaps, 90),
      p99: percentile(gaps, 99),
      max: percentile(gaps, 100)
    },
    overBudget: gaps.filter((gap) => gap > 2_000).length,
    budgetMs: 2_000,
    pass: notMoved === 0 && gaps.length > 0 && percentile(gaps, 100) <= 2_000,
    runs,
    machine: machineFacts(ffmpeg)
  } satisfies HandoverResults
  yield* fs.makeDirectory(options.resultsDir, { recursive: true }).pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "handover.json"), JSON.stringify(result, null, 2) + "\n").pipe(Effect.mapError(failure))
  yield* fs.writeFileString(path.join(options.resultsDir, "handover.md"), toMarkdown(result)).pipe(Effect.mapError(failure))
  yield* Effect.logInfo("handover benchmark done").pipe(Effect.annotateLogs({ ...result.mediaGapMs, pass: result.pass }))
  return result
})
