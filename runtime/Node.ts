/**
 * A node, as a composition of layers: configuration and observability at the
 * bottom, then the database, then sharding with the actors on it, and the
 * HTTP server beside them (it starts first, so `/health/ready` can say what
 * is still starting). Cluster mode swaps the sharding layer; nothing else.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { CameraLayer } from "../actors/Camera.ts"
import * as FleetKeeper from "../actors/FleetKeeper.ts"
import * as RecordingKeeper from "../actors/RecordingKeeper.ts"
import { RecordingSegmenterLayer } from "../actors/RecordingSegmenter.ts"
import * as RetentionSweeper from "../actors/RetentionSweeper.ts"
import { AgencyQuotaLayer } from "../actors/AgencyQuota.ts"
import { ViewerSessionLayer } from "../actors/ViewerSession.ts"
import * as AgencyStore from "./agencies/AgencyStore.ts"
import { QuotaMetrics } from "./metrics/QuotaMetrics.ts"
import * as ReservationStore from "./quota/ReservationStore.ts"
import { ViewerSessions } from "./quota/ViewerSessions.ts"
import { QuotaAdmissions } from "./quota/QuotaAdmissions.ts"
import * as ActorCameraControl from "./cameras/ActorCameraControl.ts"
import * as CameraStore from "./cameras/CameraStore.ts"
import { DataDir } from "./config/DataDir.ts"
import { NodeConfig, type NodeConfigShape } from "./config/NodeConfig.ts"
import { NodeId } from "./config/NodeId.ts"
import * as Database from "./database/Database.ts"
import { SpawnPacer } from "./ffmpeg/SpawnPacer.ts"
import { WarmFfmpeg } from "./ffmpeg/WarmFfmpeg.ts"
import { Readiness } from "./health/Readiness.ts"
import * as HttpServer from "./http/HttpServer.ts"
import * as LiveRoutes from "./http/LiveRoutes.ts"
import * as ExportRoutes from "./http/ExportRoutes.ts"
import * as PlaybackRoutes from "./http/PlaybackRoutes.ts"
import * as PlayerRoutes from "./http/PlayerRoutes.ts"
import * as RecordedMediaGuard from "./http/RecordedMediaGuard.ts"
import * as Demo from "./demo/Demo.ts"
import { LiveRegistry } from "./live/LiveRegistry.ts"
import * as Logging from "./logging/Logging.ts"
import { CameraMetrics } from "./metrics/CameraMetrics.ts"
import { Metrics } from "./metrics/Metrics.ts"
import { RecordingMetrics } from "./metrics/RecordingMetrics.ts"
import * as Exporter from "./recording/Exporter.ts"
import * as FilesystemSegmentStore from "./recording/FilesystemSegmentStore.ts"
import { MediaToken } from "./recording/MediaToken.ts"
import * as RecordingIndex from "./recording/RecordingIndex.ts"
import * as S3SegmentStore from "./recording/S3SegmentStore.ts"
import { SegmentStore } from "./recording/SegmentStore.ts"
import * as SegmentUploader from "./recording/SegmentUploader.ts"
import * as RestApi from "../rpc/rest/RestApi.ts"
import * as ClientApi from "../rpc/ClientApi.ts"
import * as ClusterMode from "./sharding/ClusterMode.ts"

/** Dependencies `/health/ready` waits for until their layers register a check. */
const startingDependencies = ["database", "store", "shards", "api"]

const foundation = (config: NodeConfigShape) => {
  const configLayer = Layer.succeed(NodeConfig, config)
  return Layer.mergeAll(
    configLayer,
    NodeId.layer.pipe(Layer.provide(configLayer)),
    DataDir.layer.pipe(Layer.provide(configLayer)),
    Readiness.layerExpecting(startingDependencies),
    Metrics.layer
  )
}

/** What camera actors use on this node: the registry, ffmpeg, the live streams, events, metrics. */
const cameraServices = Layer.mergeAll(
  CameraStore.layer,
  LiveRegistry.layer,
  ClusterMode.eventBus,
  ClusterMode.liveHandover,
  CameraMetrics.layer,
  WarmFfmpeg.layer
).pipe(Layer.provideMerge(Layer.mergeAll(NodeServices.layer, SpawnPacer.layer)))

/** Recordings go to S3 when `VMS_S3_ENDPOINT` is set, to `<data>/recordings` otherwise. */
const segmentStore = Layer.unwrap(
  Effect.map(NodeConfig, (config): Layer.Layer<SegmentStore, never, NodeConfig | DataDir> =>
    Option.isSome(config.s3Endpoint) ? S3SegmentStore.layer : FilesystemSegmentStore.layer)
)

/** The store's readiness check. */
const storeReady = Layer.effectDiscard(
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const store = yield* SegmentStore
    yield* readiness.register("store", store.check)
  })
)

/** What recording segmenters use on this node: the segment store, the index, the spool's uploader. */
const recordingServices = Layer.mergeAll(SegmentUploader.layer, storeReady).pipe(
  Layer.provideMerge(Layer.mergeAll(segmentStore, RecordingIndex.layer, RecordingMetrics.layer))
)

/** What quota actors use: agencies and their limits, the reservation store (Redis in a cluster), metrics. */
const quotaServices = Layer.mergeAll(AgencyStore.layer, ReservationStore.layer, QuotaMetrics.layer)

/** The actors and singletons this node runs, on the sharding layer of its mode. */
const actors = Layer.mergeAll(
  CameraLayer,
  RecordingSegmenterLayer,
  AgencyQuotaLayer,
  ViewerSessionLayer,
  FleetKeeper.layer(),
  RecordingKeeper.layer(),
  RetentionSweeper.layer
).pipe(
  Layer.provideMerge(QuotaAdmissions.layer),
  Layer.provideMerge(ClusterMode.sharding)
)

export interface NodeOptions {
  /** `vms start --demo N`: an in-process simulator with N registered cameras. */
  readonly demoCameras?: number | undefined
}

/** Routes that need the services (added to the running HTTP server once those are up), and the demo. */
const routes = (options: NodeOptions) =>
  Layer.mergeAll(
    LiveRoutes.layer,
    PlayerRoutes.layer,
    // Recorded media needs credentials (or a signed URL); exports are audited.
    PlaybackRoutes.layer.pipe(Layer.provide(RecordedMediaGuard.layer)),
    ExportRoutes.layer.pipe(Layer.provide(RecordedMediaGuard.layer)),
    RestApi.layer,
    ClientApi.layer,
    options.demoCameras === undefined || options.demoCameras <= 0 ? Layer.empty : Demo.layer(options.demoCameras)
  ).pipe(
    Layer.provide(ClusterMode.ownerProxy),
    Layer.provideMerge(ViewerSessions.layer),
    Layer.provideMerge([ActorCameraControl.layer, MediaToken.layer, Exporter.layer]),
    Layer.provideMerge(ClientApi.authServices)
  )

/** Registered once every route is on the router: until then `/health/ready` says the API is starting. */
const apiReady = Layer.effectDiscard(
  Effect.flatMap(Readiness, (readiness) => readiness.register("api", Effect.succeed(undefined)))
)

/** Everything behind readiness: the database, then the camera services, sharding and actors, then the API. */
const services = (options: NodeOptions) =>
  apiReady.pipe(
    Layer.provideMerge(routes(options)),
  Layer.provideMerge(actors),
  Layer.provideMerge(quotaServices),
  Layer.provideMerge(recordingServices),
  Layer.provideMerge(cameraServices),
  Layer.provideMerge(Database.layer)
)

/** The whole node for a decoded configuration. The HTTP server starts first. */
export const layer = (config: NodeConfigShape, options: NodeOptions = {}) =>
  services(options).pipe(
    Layer.provideMerge(HttpServer.layer),
    Layer.provideMerge(foundation(config)),
    Layer.provide(Logging.layer(config.logLevel))
  )
