/**
 * The camera metrics an operator graphs: cameras per status, and per camera
 * its fps, ingest bitrate, dropped frames, pipeline restarts and stalls.
 * `vms_camera_ingest_bitrate_bits` keeps the name the product promised;
 * promtool's lint objects to the `bits` unit in it (and only to that), so
 * `vms_camera_ingest_bytes_total` carries the same data in base units.
 * Per-camera series are removed when the camera's actor leaves this node, so
 * a moved camera is reported by exactly one node.
 */
import { Context, Effect, Layer } from "effect"
import client from "prom-client"
import type { CameraState } from "../../actors/CameraProtocol.ts"
import { Metrics } from "./Metrics.ts"

const states: ReadonlyArray<CameraState> = ["disabled", "offline", "connecting", "online", "error"]

export class CameraMetrics extends Context.Service<CameraMetrics, {
  readonly status: (cameraId: string, state: CameraState) => void
  readonly rates: (cameraId: string, fps: number, bitrateBits: number) => void
  readonly droppedFrames: (cameraId: string, count: number) => void
  readonly ingestedBytes: (cameraId: string, bytes: number) => void
  readonly restart: (cameraId: string) => void
  readonly stall: (cameraId: string) => void
  /** The camera's actor stopped on this node. */
  readonly forget: (cameraId: string) => void
}>()("vms/runtime/metrics/CameraMetrics") {
  static readonly layer = Layer.effect(
    CameraMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const statusOf = new Map<string, CameraState>()
      new client.Gauge({
        name: "vms_cameras",
        help: "Cameras whose actor runs on this node, by status",
        labelNames: ["status"],
        registers: [registry],
        collect() {
          const counts = new Map<CameraState, number>(states.map((s) => [s, 0]))
          for (const state of statusOf.values()) counts.set(state, (counts.get(state) ?? 0) + 1)
          for (const [status, count] of counts) this.set({ status }, count)
        }
      })
      const fps = new client.Gauge({
        name: "vms_camera_fps",
        help: "Frames per second received from the camera (last 5 s)",
        labelNames: ["camera"],
        registers: [registry]
      })
      const bitrate = new client.Gauge({
        name: "vms_camera_ingest_bitrate_bits",
        help: "Video bitrate received from the camera in bits per second (last 5 chunks)",
        labelNames: ["camera"],
        registers: [registry]
      })
      const ingested = new client.Counter({
        name: "vms_camera_ingest_bytes_total",
        help: "Video bytes received from the camera (rate() of it is the promtool-clean twin of vms_camera_ingest_bitrate_bits)",
        labelNames: ["camera"],
        registers: [registry]
      })
      const dropped = new client.Counter({
        name: "vms_camera_dropped_frames_total",
        help: "Frames ffmpeg dropped while ingesting the camera",
        labelNames: ["camera"],
        registers: [registry]
      })
      const restarts = new client.Counter({
        name: "vms_pipeline_restarts_total",
        help: "Restarts of the camera's ffmpeg pipeline (exit, failure or stall)",
        labelNames: ["camera"],
        registers: [registry]
      })
      const stalls = new client.Counter({
        name: "vms_pipeline_stalls_total",
        help: "Pipelines killed by the watchdog after making no progress",
        labelNames: ["camera"],
        registers: [registry]
      })
      const perCamera = [fps, bitrate, ingested, dropped, restarts, stalls]
      return CameraMetrics.of({
        status: (camera, state) => {
          statusOf.set(camera, state)
          if (state !== "online") {
            fps.set({ camera }, 0)
            bitrate.set({ camera }, 0)
          }
        },
        rates: (camera, framesPerSecond, bits) => {
          fps.set({ camera }, framesPerSecond)
          bitrate.set({ camera }, bits)
        },
        droppedFrames: (camera, count) => {
          if (count > 0) dropped.inc({ camera }, count)
        },
        ingestedBytes: (camera, bytes) => ingested.inc({ camera }, bytes),
        restart: (camera) => restarts.inc({ camera }),
        stall: (camera) => stalls.inc({ camera }),
        forget: (camera) => {
          statusOf.delete(camera)
          for (const metric of perCamera) metric.remove({ camera })
        }
      })
    })
  )
}
