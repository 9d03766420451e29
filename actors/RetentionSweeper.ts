/**
 * The retention sweeper: a cluster singleton that deletes recordings past
 * their camera's `retentionDays` (or `VMS_RECORDING_RETENTION_DAYS`), then
 * the oldest recordings of all cameras while the index holds more than
 * `VMS_RECORDING_MAX_BYTES`. Each segment's index row is deleted before its
 * object, so playback never lists a segment whose object is gone. When the
 * store's disk is nearly full it raises a `storage-full` alert.
 */
import { DateTime, Effect, Option } from "effect"
import { Singleton } from "effect/cluster"
import { NodeConfig } from "../runtime/config/NodeConfig.ts"
import { NodeId } from "../runtime/config/NodeId.ts"
import { EventBus, RecordingAlert } from "../runtime/events/EventBus.ts"
import { RecordingMetrics } from "../runtime/metrics/RecordingMetrics.ts"
import { type RecordedSegment, RecordingIndex } from "../runtime/recording/RecordingIndex.ts"
import { SegmentStore } from "../runtime/recording/SegmentStore.ts"

const batch = 500
/** Below this share of free disk the store counts as full. */
export const fullBelowFreeRatio = 0.03

export const sweepOnce = Effect.gen(function*() {
  const index = yield* RecordingIndex
  const store = yield* SegmentStore
  const config = yield* NodeConfig
  const metrics = yield* RecordingMetrics

  const remove = Effect.fnUntraced(function*(segment: RecordedSegment) {
    const removed = yield* index.remove(segment.id)
    if (!removed) return false
    yield* store.remove(segment.objectKey).pipe(
      Effect.catch((error) =>
        Effect.logWarning("retention could not delete an object; it is no longer listed").pipe(
          Effect.annotateLogs({ key: segment.objectKey, error: error.message })
        )
      )
    )
    return true
  })

  let byAge = 0
  const defaultDays = Option.getOrUndefined(config.recordingRetentionDays)
  while (true) {
    const expired = yield* index.expired(Date.now(), defaultDays, batch)
    for (const segment of expired) if (yield* remove(segment)) byAge++
    if (expired.length < batch) break
  }

  let byBudget = 0
  if (Option.isSome(config.recordingMaxBytes)) {
    const budget = config.recordingMaxBytes.value
    let total = yield* index.totalBytes
    while (total > budget) {
      const oldest = yield* index.oldest(batch)
      if (oldest.length === 0) break
      for (const segment of oldest) {
        if (total <= budget) break
        if (yield* remove(segment)) {
          byBudget++
          total -= segment.bytes
        }
      }
    }
  }
  if (byAge > 0) metrics.deleted("age", byAge)
  if (byBudget > 0) metrics.deleted("budget", byBudget)
  if (byAge + byBudget > 0) yield* Effect.logInfo("retention deleted recordings").pipe(Effect.annotateLogs({ byAge, byBudget }))
  return { byAge, byBudget }
})

export const sweepForever = Effect.gen(function*() {
  const config = yield* NodeConfig
  const store = yield* SegmentStore
  const bus = yield* EventBus
  const nodeId = yield* NodeId
  let full = false
  while (true) {
    yield* sweepOnce.pipe(
      Effect.catch((error) => Effect.logWarning("retention sweep failed; retrying next time").pipe(Effect.annotateLogs({ error: error.message })))
    )
    const capacity = yield* store.capacity
    const nowFull = capacity !== undefined && capacity.freeBytes < capacity.totalBytes * fullBelowFreeRatio
    if (nowFull && !full) {
      const message = `recordings disk has ${capacity.freeBytes} of ${capacity.totalBytes} bytes free; set VMS_RECORDING_MAX_BYTES or shorten retention`
      yield* Effect.logError("recording storage is full").pipe(Effect.annotateLogs({ ...capacity }))
      yield* bus.publish(new RecordingAlert({ kind: "storage-full", message, nodeId, at: yield* DateTime.now }))
    }
    full = nowFull
    yield* Effect.sleep(config.recordingRetentionIntervalSeconds * 1000)
  }
}).pipe(Effect.annotateLogs({ actor: "RetentionSweeper" }))

export const layer = Singleton.make("RecordingRetention", sweepForever)
