/**
 * Spool → store → index, for every closed segment on this node: put the
 * file in the `SegmentStore`, insert its index row (idempotent), then
 * delete the spool files; in that order, so a crash at any point leaves the
 * segment in the spool to be processed again, never lost and never indexed
 * twice. A failing store or database is retried with capped, jittered
 * backoff while the spool keeps growing; the backlog is a metric, and an
 * alert fires when it passes `VMS_RECORDING_SPOOL_ALERT_BYTES`.
 *
 * When the layer starts it takes over whatever a previous process left in
 * the spool, the segments it was recording included (their end is read by
 * ffprobe), before any segmenter of this process writes there.
 */
import { Context, DateTime, Effect, Layer, Queue } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"
import { NodeId } from "../config/NodeId.ts"
import { EventBus, RecordingAlert } from "../events/EventBus.ts"
import { delayMs } from "../ffmpeg/Backoff.ts"
import { RecordingMetrics } from "../metrics/RecordingMetrics.ts"
import { RecordingIndex } from "./RecordingIndex.ts"
import * as SegmentProbe from "./SegmentProbe.ts"
import { segmentKey, SegmentStore } from "./SegmentStore.ts"
import * as Spool from "./Spool.ts"

export class SegmentUploader extends Context.Service<SegmentUploader, {
  /** The spool root, `<data>/spool`. */
  readonly root: string
  /** A closed segment is ready in the spool. */
  readonly submit: (segment: Spool.SpooledSegment) => Effect.Effect<void>
  readonly backlog: Effect.Effect<{ readonly segments: number; readonly bytes: number }>
}>()("vms/runtime/recording/SegmentUploader") {}

const retryPolicy = { initialMs: 500, maxMs: 10_000, resetAfterMs: 0 }
const workers = 4

export const layer: Layer.Layer<
  SegmentUploader,
  never,
  | SegmentStore
  | RecordingIndex
  | RecordingMetrics
  | EventBus
  | DataDir
  | NodeConfig
  | NodeId
  | ChildProcessSpawner.ChildProcessSpawner
> = Layer.effect(
  SegmentUploader,
  Effect.gen(function*() {
    const store = yield* SegmentStore
    const index = yield* RecordingIndex
    const metrics = yield* RecordingMetrics
    const bus = yield* EventBus
    const config = yield* NodeConfig
    const nodeId = yield* NodeId
    const dataDir = yield* DataDir
    const root = Spool.spoolRoot(dataDir.path)
    const queue = yield* Queue.unbounded<Spool.SpooledSegment>()
    const waiting = new Map<string, number>()
    let alerting = false

    const reportBacklog = Effect.gen(function*() {
      let bytes = 0
      for (const size of waiting.values()) bytes += size
      metrics.backlog(waiting.size, bytes)
      if (!alerting && bytes > config.recordingSpoolAlertBytes) {
        alerting = true
        const message = `spool holds ${waiting.size} segments (${bytes} bytes) waiting for the ${store.kind} store`
        yield* Effect.logWarning("recording spool passed its alert threshold").pipe(
          Effect.annotateLogs({ segments: waiting.size, bytes, threshold: config.recordingSpoolAlertBytes })
        )
        yield* bus.publish(new RecordingAlert({ kind: "spool-threshold", message, nodeId, at: yield* DateTime.now }))
      } else if (alerting && bytes < config.recordingSpoolAlertBytes / 2) {
        alerting = false
        yield* Effect.logInfo("recording spool back under its alert threshold").pipe(Effect.annotateLogs({ bytes }))
      }
    })

    const submit = (segment: Spool.SpooledSegment) =>
      Effect.suspend(() => {
        waiting.set(segment.media, segment.bytes)
        return reportBacklog
      }).pipe(Effect.andThen(Queue.offer(queue, segment)), Effect.asVoid)

    /** One attempt: store, index, then forget the spool files. */
    const process = Effect.fnUntraced(function*(segment: Spool.SpooledSegment) {
      const key = segmentKey(segment.cameraId, segment.startMs)
      const started = performance.now()
      yield* store.put(key, segment.media, segment.bytes)
      const uploadSeconds = (performance.now() - started) / 1000
      const inserted = yield* index.insert({
        cameraId: segment.cameraId,
        startMs: segment.startMs,
        endMs: segment.endMs,
        durationMs: segment.durationMs,
        bytes: segment.bytes,
        objectKey: key,
        codec: segment.codec,
        width: segment.width,
        height: segment.height,
        nodeId
      })
      yield* Spool.removeSegmentFiles(segment.media, segment.sidecar)
      if (inserted) metrics.stored(segment.cameraId, segment.bytes, uploadSeconds)
      yield* Effect.logDebug(inserted ? "segment stored" : "segment was indexed already").pipe(
        Effect.annotateLogs({ key, bytes: segment.bytes, ms: Math.round(uploadSeconds * 1000) })
      )
    })

    const processWithRetry = (segment: Spool.SpooledSegment) =>
      Effect.gen(function*() {
        for (let attempt = 1;; attempt++) {
          const failed = yield* process(segment).pipe(
            Effect.as(undefined),
            Effect.catch((error) => Effect.succeed(error))
          )
          if (failed === undefined) break
          const delay = delayMs(retryPolicy, attempt)
          yield* Effect.logWarning("segment upload failed; retrying").pipe(
            Effect.annotateLogs({ error: failed.message, attempt, retryInMs: delay })
          )
          yield* Effect.sleep(delay)
        }
        waiting.delete(segment.media)
        yield* reportBacklog
      }).pipe(Effect.annotateLogs({ actor: "SegmentUploader", cameraId: segment.cameraId, startMs: segment.startMs }))

    yield* Effect.forEach(
      Array.from({ length: workers }),
      () => Queue.take(queue).pipe(Effect.flatMap(processWithRetry), Effect.forever, Effect.forkScoped),
      { discard: true }
    )

    /** A segment a previous process left: closed ones are described by their sidecar, open ones by ffprobe. */
    const recover = Effect.fnUntraced(function*(left: Spool.LeftOver) {
      const sidecar = yield* Spool.readSidecar(left.sidecar)
      if (sidecar?.endMs !== undefined && sidecar.durationMs !== undefined) {
        return yield* submit({ ...sidecar, endMs: sidecar.endMs, durationMs: sidecar.durationMs, bytes: left.bytes, media: left.media, sidecar: left.sidecar })
      }
      const probed = yield* SegmentProbe.probe(config.ffmpegPath, left.media).pipe(
        Effect.catchTag("ProbeFailed", (error) =>
          Effect.logWarning("dropping an unreadable spooled segment").pipe(
            Effect.annotateLogs({ file: left.media, bytes: left.bytes, error: error.message }),
            Effect.andThen(Spool.removeSegmentFiles(left.media, left.sidecar)),
            Effect.as(undefined)
          ))
      )
      if (probed === undefined) return
      yield* submit({
        cameraId: left.cameraId,
        startMs: left.startMs,
        endMs: left.startMs + probed.durationMs,
        durationMs: probed.durationMs,
        bytes: left.bytes,
        codec: sidecar?.codec ?? probed.codec,
        width: sidecar?.width ?? probed.width,
        height: sidecar?.height ?? probed.height,
        media: left.media,
        sidecar: left.sidecar
      })
    })

    // Listed now, before any segmenter of this process opens a spool file; recovered in the background.
    const leftOver = yield* Spool.scan(root)
    if (leftOver.length > 0) {
      yield* Effect.logInfo("recovering segments left in the spool").pipe(
        Effect.annotateLogs({ segments: leftOver.length, bytes: leftOver.reduce((sum, left) => sum + left.bytes, 0) })
      )
      yield* Effect.forEach(leftOver, recover, { discard: true }).pipe(
        Effect.annotateLogs({ actor: "SegmentUploader" }),
        Effect.forkScoped
      )
    }

    return SegmentUploader.of({
      root,
      submit,
      backlog: Effect.sync(() => {
        let bytes = 0
        for (const size of waiting.values()) bytes += size
        return { segments: waiting.size, bytes }
      })
    })
  })
)
