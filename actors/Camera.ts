/**
 * The Camera actor: one effect/cluster entity per camera id, living on the
 * node that owns the camera's shard. While its camera is enabled it keeps
 * itself alive and owns the camera's ingest pipeline (one ffmpeg, a scoped
 * resource of the actor: stopping, disabling or moving the actor kills it).
 * It holds the state machine `disabled | offline | connecting | online |
 * error`, publishes every change on the event bus, and takes snapshots from
 * its newest live chunk.
 */
import { Cause, DateTime, Effect, Fiber, Option, Schema } from "effect"
import { Entity, type Sharding } from "effect/cluster"
import type { ChildProcessSpawner } from "effect/process"
import { Rpc } from "effect/rpc"
import * as path from "node:path"
import type { CameraRecord } from "../runtime/cameras/CameraStore.ts"
import { CameraStore } from "../runtime/cameras/CameraStore.ts"
import { NodeConfig } from "../runtime/config/NodeConfig.ts"
import { NodeId } from "../runtime/config/NodeId.ts"
import { CameraStatusChanged, EventBus } from "../runtime/events/EventBus.ts"
import { PipelineSettings } from "../runtime/ffmpeg/PipelineSettings.ts"
import * as Pipeline from "../runtime/ffmpeg/Pipeline.ts"
import type { SpawnPacer } from "../runtime/ffmpeg/SpawnPacer.ts"
import type { WarmFfmpeg } from "../runtime/ffmpeg/WarmFfmpeg.ts"
import type { StreamInfo } from "../runtime/ffmpeg/StderrLog.ts"
import { LiveHandover } from "../runtime/live/LiveHandover.ts"
import { LiveRegistry } from "../runtime/live/LiveRegistry.ts"
import * as LiveStream from "../runtime/live/LiveStream.ts"
import * as SnapshotCache from "../runtime/live/SnapshotCache.ts"
import { CameraMetrics } from "../runtime/metrics/CameraMetrics.ts"
import { OwnershipFence, ShardHandoff, whileOwned } from "../runtime/sharding/ShardLeases.ts"
import {
  CameraNotFound,
  type CameraState,
  CameraStatus,
  CameraStoreError,
  Snapshot,
  SnapshotUnavailable
} from "./CameraProtocol.ts"

// ---------------------------------------------------------------------------
// Protocol

export {
  CameraNotFound,
  CameraState,
  CameraStatus,
  CameraStoreError,
  Snapshot,
  SnapshotUnavailable
} from "./CameraProtocol.ts"

export const GetStatus = Rpc.make("GetStatus", {
  success: CameraStatus,
  error: Schema.Union([CameraNotFound, CameraStoreError])
})

/** The camera's row changed: re-read it and apply it (start, restart with a new URL, stop). */
export const Reconcile = Rpc.make("Reconcile", {
  error: CameraStoreError
})

/** Wakes the actor (it applies its registration when it starts); sent by the fleet keeper. */
export const Ensure = Rpc.make("Ensure")

export const TakeSnapshot = Rpc.make("TakeSnapshot", {
  success: Snapshot,
  error: Schema.Union([CameraNotFound, SnapshotUnavailable])
})

// ---------------------------------------------------------------------------
// Entity

export const Camera = Entity.make("Camera", [GetStatus, Reconcile, Ensure, TakeSnapshot])

/** Chunks listed in the live playlist, and kept on disk after leaving it. */
const liveWindow = 6
const liveGrace = 6
/** A snapshot decoded less than this long ago is answered as is. */
const snapshotFreshMs = 2_000
/** After a snapshot request, the camera decodes each new chunk ahead for this long. */
const snapshotDemandMs = 10_000
/**
 * A camera handed to another node (this node is stopping) is stopped this long
 * before its next keyframe (KeyframeClock). The successor plays it 0.4-0.8 s
 * after the stop here (30 cameras on three nodes, 2 cores), so its first chunk
 * mostly starts at that very keyframe, 0.7 s after the last frame here, and
 * otherwise one keyframe interval later; stopped at once, the wait for the
 * next keyframe added 0-1 s (a 1 s GOP) to every move.
 */
const handoverStopLeadMs = 700

interface Running {
  readonly url: string
  readonly fiber: Fiber.Fiber<never>
  /** Set once the pipeline fiber has created them. */
  live: LiveStream.LiveStream | undefined
  snapshots: SnapshotCache.SnapshotCache | undefined
}

export const CameraLayer = Camera.toLayer(
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const cameraId = address.entityId
    const nodeId = yield* NodeId
    const config = yield* NodeConfig
    const store = yield* CameraStore
    const registry = yield* LiveRegistry
    const bus = yield* EventBus
    const metrics = yield* CameraMetrics
    const settings = yield* PipelineSettings
    const fence = yield* OwnershipFence
    const handover = yield* LiveHandover
    const handoff = yield* ShardHandoff
    const entityScope = yield* Effect.scope
    const pipelineContext = yield* Effect.context<
      ChildProcessSpawner.ChildProcessSpawner | SpawnPacer | CameraMetrics | WarmFfmpeg
    >()
    const keepAliveContext = yield* Effect.context<Entity.CurrentAddress | Sharding.Sharding>()
    const keepAlive = (enabled: boolean) => Entity.keepAlive(enabled).pipe(Effect.provideContext(keepAliveContext))
    const liveDir = path.resolve(config.dataDir, "live", cameraId)
    const annotate = Effect.annotateLogs({ actor: "Camera", cameraId })

    let registration: Option.Option<CameraRecord> = Option.none()
    let running: Running | undefined
    let streamInfo: StreamInfo | undefined
    // The status's parts; a CameraStatus is built only when someone reads it
    // (rates change every second on every camera, reads are rare).
    let state: CameraState = "offline"
    let reason: string | null = null
    let updatedAt = yield* DateTime.now
    let fps = 0
    let bitrate = 0
    const currentStatus = () =>
      new CameraStatus({
        cameraId,
        status: state,
        reason,
        fps: state === "online" ? fps : 0,
        bitrate: state === "online" ? bitrate : 0,
        nodeId,
        updatedAt,
        video: streamInfo === undefined ? null : { codec: streamInfo.codec, width: streamInfo.width, height: streamInfo.height }
      })

    const setState = Effect.fnUntraced(function*(next: CameraState, nextReason: string | null) {
      if (state === next && reason === nextReason) return
      state = next
      reason = nextReason
      updatedAt = yield* DateTime.now
      metrics.status(cameraId, next)
      yield* Effect.logInfo("camera status changed").pipe(Effect.annotateLogs({ status: next, reason }))
      // Fenced: a node that lost the camera's lease (partitioned, frozen) publishes nothing for it.
      if (fence.owns(cameraId)) yield* bus.publish(new CameraStatusChanged({ status: currentStatus() }))
    })

    const report: Pipeline.PipelineReport = {
      state: setState,
      rates: (nextFps, nextBitrate) =>
        Effect.sync(() => {
          metrics.rates(cameraId, nextFps, nextBitrate)
          fps = nextFps
          bitrate = nextBitrate
        }),
      streamInfo: (info) =>
        Effect.suspend(() => {
          const changed = streamInfo?.codec !== info.codec || streamInfo.width !== info.width ||
            streamInfo.height !== info.height
          streamInfo = info
          return changed ? Effect.logInfo("camera stream").pipe(Effect.annotateLogs({ ...info })) : Effect.void
        })
    }

    const stopPipeline = Effect.gen(function*() {
      if (running === undefined) return
      const { fiber } = running
      running = undefined
      // Interruption runs the pipeline's finalizers: the process group is killed, the live dir removed.
      yield* Fiber.interrupt(fiber)
      yield* keepAlive(false)
    })

    const startPipeline = Effect.fnUntraced(function*(record: CameraRecord) {
      const run: Running = { url: record.url, fiber: undefined as never, live: undefined, snapshots: undefined }
      const pipeline = Effect.gen(function*() {
        // Moved here from a node that stopped it: its last chunks go first, so the live stream goes
        // on. Asked as soon as the lease is ours (a leaver saves its tail before releasing the
        // lease; this actor may start while it is still stopping): the NATS round trip overlaps the
        // stream's setup.
        const predecessor = yield* Effect.forkChild(Effect.andThen(fence.untilOwned(cameraId), handover.take(cameraId)))
        const live = yield* LiveStream.make({ dir: liveDir, windowSize: liveWindow, graceSize: liveGrace })
        run.live = live
        run.snapshots = yield* SnapshotCache.make({
          cameraId,
          ffmpegPath: config.ffmpegPath,
          live,
          freshMs: snapshotFreshMs,
          demandMs: snapshotDemandMs
        })
        const taken = yield* Fiber.join(predecessor)
        if (taken !== undefined && (yield* live.expectTail(taken.header))) {
          // Its numbering is set, so ffmpeg starts now; the chunks' bytes (hundreds of kilobytes
          // through NATS) follow meanwhile, and are listed before this node's first chunk.
          yield* Effect.forkScoped(Effect.gen(function*() {
            const files = yield* taken.files
            yield* live.seed(files === undefined ? undefined : { header: taken.header, files })
            yield* (files === undefined
              ? Effect.logWarning("the previous owner's live tail did not come; the live stream starts anew")
              : Effect.logInfo("went on from the previous owner's live tail")).pipe(
                Effect.annotateLogs({ from: taken.header.nodeId, chunks: files?.length ?? 0 })
              )
          }))
        }
        yield* registry.register(cameraId, live)
        // The actor stopping with its pipeline running (the shard moves, the node stops) hands the
        // camera over: after ffmpeg has closed its last chunk (this finalizer runs after the
        // pipeline's) and while the lease is still held, the newest chunks are left for the successor;
        // a stopping node then lets the shard's lease go at once (unless another camera of the
        // shard is still stopping), not after the last camera of the node.
        yield* handoff.hold(address.shardId.toString())
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() =>
            running === run && fence.owns(cameraId)
              ? Effect.flatMap(live.tail(cameraId, nodeId, handover), (tail) =>
                tail === undefined ? Effect.void : handover.save(tail))
              : Effect.void
          )
        )
        const options = {
          cameraId,
          url: record.url,
          ffmpegPath: config.ffmpegPath,
          live,
          ...settings,
          mayRun: () => fence.owns(cameraId),
          stopLeadMs: () => handoff.leaving() ? handoverStopLeadMs : undefined,
          // A stop waits for its keyframe under the lease, never past it (at once when already lost).
          stopWaitEnds: fence.lost(cameraId)
        }
        // The moment the lease lapses (cut off from NATS, resumed after a freeze, an event loop
        // stalled past the lease's margin), ffmpeg goes; if this node renews the lease after all,
        // the camera runs again.
        return yield* whileOwned(
          fence,
          cameraId,
          Pipeline.run(options, report),
          Effect.andThen(
            Effect.logWarning("lost the camera's lease; its pipeline stopped until the lease is valid again"),
            setState("offline", "this node lost the camera's lease")
          )
        )
      }).pipe(
        // The pipeline never ends by itself; if a defect kills it, say so and let Ensure restart it.
        Effect.tapCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.gen(function*() {
            yield* Effect.logError("camera pipeline died", cause)
            if (running === run) running = undefined
            yield* setState("error", `pipeline failed: ${Cause.squash(cause)}`)
          })
        ),
        Effect.annotateLogs({ actor: "Camera", cameraId }),
        Effect.scoped,
        Effect.provideContext(pipelineContext)
      )
      ;(run as { fiber: Fiber.Fiber<never> }).fiber = yield* Effect.forkIn(pipeline, entityScope)
      running = run
      yield* keepAlive(true)
    })

    /** Brings the pipeline in line with the camera's row. */
    const apply = Effect.gen(function*() {
      const found = yield* store.get(cameraId).pipe(
        Effect.mapError((error) => new CameraStoreError({ cameraId, message: error.message }))
      )
      registration = found
      if (Option.isNone(found) || !found.value.enabled) {
        yield* stopPipeline
        yield* setState("disabled", Option.isNone(found) ? "camera removed" : null)
        if (Option.isNone(found)) metrics.forget(cameraId)
        return
      }
      const record = found.value
      if (running !== undefined && running.url === record.url) return
      if (running !== undefined) yield* Effect.logInfo("camera URL changed; restarting its pipeline")
      yield* stopPipeline
      yield* startPipeline(record)
    })

    const takeSnapshot = Effect.suspend(() =>
      running?.snapshots === undefined
        ? Effect.fail(new SnapshotUnavailable({ cameraId, message: `no live video (camera is ${state})` }))
        : running.snapshots.take
    )

    yield* Effect.addFinalizer(() => Effect.sync(() => metrics.forget(cameraId)))
    yield* apply.pipe(
      Effect.catch((error) =>
        Effect.andThen(
          Effect.logWarning("cannot read the camera's registration; the fleet keeper will retry").pipe(
            Effect.annotateLogs({ error: error.message })
          ),
          setState("offline", "cannot read the camera's registration")
        )
      ),
      annotate
    )
    yield* Effect.logDebug("camera actor started").pipe(annotate)

    return Camera.of({
      GetStatus: () =>
        Effect.suspend(() =>
          Option.isSome(registration) ? Effect.sync(currentStatus) : Effect.fail(new CameraNotFound({ cameraId }))
        ).pipe(Rpc.fork),
      Reconcile: () => apply.pipe(annotate),
      Ensure: () =>
        Effect.suspend(() => {
          const applied = Option.isSome(registration) && (running !== undefined || !registration.value.enabled)
          return applied ? Effect.void : apply.pipe(Effect.ignore, annotate)
        }),
      TakeSnapshot: () =>
        Effect.suspend((): Effect.Effect<Snapshot, CameraNotFound | SnapshotUnavailable> =>
          Option.isSome(registration) ? takeSnapshot : Effect.fail(new CameraNotFound({ cameraId }))
        ).pipe(annotate, Rpc.fork)
    })
  })
)
