/**
 * The RecordingSegmenter actor: one effect/cluster entity per camera id (the
 * Camera entity's id, so both land on the same shard and node). While its
 * camera is enabled and recording it keeps itself alive and follows the
 * camera's live stream on this node: every finished ~1 s MPEG-TS chunk
 * (keyframe first, PAT/PMT included) is appended to the open spool segment,
 * cut on wall-clock boundaries and at gaps by `SegmentCutter`. Closed
 * segments go to the node's `SegmentUploader`. It never opens an RTSP
 * session or touches ffmpeg, so switching recording on or off leaves live
 * alone. Stopping (recording off, actor moved) closes and hands over the
 * open segment.
 */
import { DateTime, Effect, Fiber, Option, PubSub, Schema } from "effect"
import { Entity, type Sharding } from "effect/cluster"
import { Rpc } from "effect/rpc"
import * as fs from "node:fs/promises"
import { CameraStore } from "../runtime/cameras/CameraStore.ts"
import { NodeConfig } from "../runtime/config/NodeConfig.ts"
import { NodeId } from "../runtime/config/NodeId.ts"
import { EventBus, RecordingStatusChanged } from "../runtime/events/EventBus.ts"
import { LiveRegistry } from "../runtime/live/LiveRegistry.ts"
import { OwnershipFence } from "../runtime/sharding/ShardLeases.ts"
import type { LiveChunk, LiveStream } from "../runtime/live/LiveStream.ts"
import { RecordingMetrics } from "../runtime/metrics/RecordingMetrics.ts"
import * as SegmentCutter from "../runtime/recording/SegmentCutter.ts"
import { SegmentUploader } from "../runtime/recording/SegmentUploader.ts"
import * as Spool from "../runtime/recording/Spool.ts"
import { Camera } from "./Camera.ts"

// ---------------------------------------------------------------------------
// Protocol

export class RecorderStoreError extends Schema.TaggedError<RecorderStoreError>()("RecorderStoreError", {
  cameraId: Schema.String,
  message: Schema.String
}) {}

export class RecorderStatus extends Schema.Class<RecorderStatus>("RecorderStatus")({
  cameraId: Schema.String,
  recording: Schema.Boolean,
  /** Start of the segment being written, when one is open. */
  segmentStartMs: Schema.NullOr(Schema.Number),
  nodeId: Schema.String
}) {}

/** The camera's row changed: re-read it and start or stop recording. */
export const Reconcile = Rpc.make("Reconcile", { error: RecorderStoreError })

/** Wakes the actor (it applies its registration when it starts); sent by the recording keeper. */
export const Ensure = Rpc.make("Ensure")

export const GetStatus = Rpc.make("GetStatus", { success: RecorderStatus })

// ---------------------------------------------------------------------------
// Entity

export const RecordingSegmenter = Entity.make("RecordingSegmenter", [Reconcile, Ensure, GetStatus])

interface OpenFile {
  readonly cut: SegmentCutter.OpenSegment
  readonly files: ReturnType<typeof Spool.segmentFiles>
  readonly handle: fs.FileHandle
  readonly video: Pick<Spool.SpoolSidecar, "codec" | "width" | "height">
  bytes: number
}

export const RecordingSegmenterLayer = RecordingSegmenter.toLayer(
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const cameraId = address.entityId
    const nodeId = yield* NodeId
    const config = yield* NodeConfig
    const store = yield* CameraStore
    const registry = yield* LiveRegistry
    const uploader = yield* SegmentUploader
    const metrics = yield* RecordingMetrics
    const bus = yield* EventBus
    const fence = yield* OwnershipFence
    const cameraClient = yield* Camera.client
    const entityScope = yield* Effect.scope
    const keepAliveContext = yield* Effect.context<Entity.CurrentAddress | Sharding.Sharding>()
    const keepAlive = (enabled: boolean) => Entity.keepAlive(enabled).pipe(Effect.provideContext(keepAliveContext))
    const annotate = Effect.annotateLogs({ actor: "RecordingSegmenter", cameraId })
    const segmentMs = config.recordingSegmentSeconds * 1000

    let recorder: Fiber.Fiber<never> | undefined
    let open: OpenFile | undefined
    /** The stream being followed, and the last segment closed on it (recording switched back on continues it). */
    let following: LiveStream | undefined
    let lastClosed: SegmentCutter.OpenSegment | undefined

    /** The camera's video as its actor last saw it (for the index row); nulls if it cannot say. */
    const video = cameraClient(cameraId).GetStatus().pipe(
      Effect.timeout("2 seconds"),
      Effect.map((status) => status.video ?? null),
      Effect.orElseSucceed(() => null),
      Effect.map((found) => ({ codec: found?.codec ?? null, width: found?.width ?? null, height: found?.height ?? null }))
    )

    const closeOpen = Effect.gen(function*() {
      const closing = open
      if (closing === undefined) return
      open = undefined
      lastClosed = closing.cut
      yield* Effect.promise(() => closing.handle.close())
      const { startMs, endMs } = closing.cut
      const sidecar: Spool.SpoolSidecar = { cameraId, startMs, endMs, durationMs: endMs - startMs, ...closing.video }
      yield* Spool.writeSidecar(closing.files.sidecar, sidecar)
      yield* uploader.submit({
        ...sidecar,
        endMs,
        durationMs: endMs - startMs,
        bytes: closing.bytes,
        media: closing.files.media,
        sidecar: closing.files.sidecar
      })
      yield* Effect.logDebug("segment closed").pipe(
        Effect.annotateLogs({ startMs, durationMs: endMs - startMs, bytes: closing.bytes, chunks: closing.cut.chunks })
      )
    })

    const openFile = Effect.fnUntraced(function*(cut: SegmentCutter.OpenSegment) {
      const files = Spool.segmentFiles(uploader.root, cameraId, cut.startMs)
      const seen = yield* video
      yield* Effect.promise(() => fs.mkdir(files.dir, { recursive: true }))
      // The sidecar first: a media file never exists without the facts to index it.
      yield* Spool.writeSidecar(files.sidecar, { cameraId, startMs: cut.startMs, ...seen })
      const handle = yield* Effect.promise(() => fs.open(files.media, "a"))
      return { cut, files, handle, video: seen, bytes: 0 } satisfies OpenFile
    })

    const onChunk = Effect.fnUntraced(function*(chunk: LiveChunk) {
      // Fenced: a chunk that arrives after this node's lease on the camera lapsed (cut off from NATS,
      // resumed after a freeze) belongs to no recording of ours; the new owner records from its start.
      // What was recorded under the lease is closed and uploaded as usual: nothing recorded is lost.
      if (!fence.owns(cameraId)) {
        yield* Effect.logWarning("camera no longer owned by this node; chunk not recorded").pipe(
          Effect.annotateLogs({ sequence: chunk.sequence })
        )
        return
      }
      // Read first: a chunk the live stream already deleted is a missing chunk, cut at the next one.
      const bytes = yield* Effect.promise(() => fs.readFile(chunk.path).catch(() => undefined))
      if (bytes === undefined) {
        yield* Effect.logDebug("live chunk gone before it was recorded").pipe(Effect.annotateLogs({ sequence: chunk.sequence }))
        return
      }
      const decision = SegmentCutter.onChunk(open?.cut, {
        sequence: chunk.sequence,
        startedAtMs: chunk.programDateTime.getTime(),
        durationMs: Math.round(chunk.durationSeconds * 1000),
        discontinuity: chunk.discontinuity
      }, segmentMs, lastClosed)
      if (decision.close !== undefined) {
        if (decision.close !== "boundary") {
          metrics.gap(cameraId)
          yield* Effect.logInfo("recording gap").pipe(Effect.annotateLogs({ reason: decision.close }))
        }
        yield* closeOpen
      }
      if (open === undefined) open = yield* openFile(decision.segment)
      const writing = open
      yield* Effect.promise(() => writing.handle.write(bytes))
      writing.bytes += bytes.length
      ;(writing as { cut: SegmentCutter.OpenSegment }).cut = decision.segment
    })

    /** Appends the stream's chunks until the stream ends (its pipeline stopped). */
    const follow = (live: LiveStream) =>
      Effect.gen(function*() {
        if (following !== live) lastClosed = undefined
        following = live
        const subscription = yield* PubSub.subscribe(live.chunks)
        // Each append runs to its end, so the sidecar always describes the bytes in the file.
        const consume = PubSub.take(subscription).pipe(
          Effect.flatMap((chunk) => Effect.uninterruptible(onChunk(chunk))),
          Effect.forever
        )
        yield* Effect.race(consume, PubSub.awaitShutdown(live.chunks))
      }).pipe(Effect.scoped, Effect.ensuring(closeOpen))

    const record = Effect.gen(function*() {
      let previous: LiveStream | undefined
      while (true) {
        const live = yield* registry.next(cameraId, previous)
        previous = live
        yield* Effect.logDebug("recording the camera's live stream")
        yield* follow(live)
      }
    }).pipe(Effect.ensuring(closeOpen), annotate) as Effect.Effect<never>

    /** Fenced like the camera's own status: a node that lost the camera's lease publishes nothing for it. */
    const publish = (recording: boolean) =>
      fence.owns(cameraId)
        ? Effect.flatMap(DateTime.now, (at) => bus.publish(new RecordingStatusChanged({ cameraId, recording, nodeId, at })))
        : Effect.void

    const apply = Effect.gen(function*() {
      const found = yield* store.get(cameraId).pipe(
        Effect.mapError((error) => new RecorderStoreError({ cameraId, message: error.message }))
      )
      const wanted = Option.isSome(found) && found.value.enabled && found.value.recording
      if (wanted && recorder === undefined) {
        recorder = yield* Effect.forkIn(record, entityScope)
        yield* keepAlive(true)
        yield* Effect.logInfo("recording started")
        yield* publish(true)
      } else if (!wanted && recorder !== undefined) {
        const stopping = recorder
        recorder = undefined
        yield* Fiber.interrupt(stopping)
        yield* keepAlive(false)
        yield* Effect.logInfo("recording stopped")
        yield* publish(false)
      }
    }).pipe(annotate)

    yield* apply.pipe(
      Effect.catch((error) =>
        Effect.logWarning("cannot read the camera's registration; the recording keeper will retry").pipe(
          Effect.annotateLogs({ error: error.message }),
          annotate
        )
      )
    )

    return RecordingSegmenter.of({
      Reconcile: () => apply,
      Ensure: () => recorder === undefined ? apply.pipe(Effect.ignore) : Effect.void,
      GetStatus: () =>
        Effect.sync(() =>
          new RecorderStatus({ cameraId, recording: recorder !== undefined, segmentStartMs: open?.cut.startMs ?? null, nodeId })
        )
    })
  })
)
