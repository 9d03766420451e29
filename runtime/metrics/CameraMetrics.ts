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
      // The hot path (every progress report and chunk of every camera) only
      // writes these plain records; prom-client reads them when scraped, so
      // no label hashing happens per event.
      const cameras = new Map<string, CameraSample>()
      const sampleOf = (camera: string): CameraSample => {
        let sample = cameras.get(camera)
        if (sample === undefined) {
          sample = { state: "offline", fps: 0, bitrate: 0, bytes: 0, dropped: 0, restarts: 0, stalls: 0 }
          cameras.set(camera, sample)
        }
        return sample
      }
      const perCamera = (
        name: string,
        help: string,
        kind: "gauge" | "counter",
        read: (sample: CameraSample) => number
      ) => {
        const options = {
          name,
          help,
          labelNames: ["camera"] as const,
          registers: [registry],
          collect(this: client.Gauge<"camera"> | client.Counter<"camera">) {
            this.reset()
            for (const [camera, sample] of cameras) {
              const value = read(sample)
              if (this instanceof client.Gauge) this.set({ camera }, value)
              else if (value > 0) this.inc({ camera }, value)
            }
          }
        }
        return kind === "gauge" ? new client.Gauge(options) : new client.Counter(options)
      }
      new client.Gauge({
        name: "vms_cameras",
        help: "Cameras whose actor runs on this node, by status",
        labelNames: ["status"],
        registers: [registry],
        collect() {
          const counts = new Map<CameraState, number>(states.map((s) => [s, 0]))
          for (const { state } of cameras.values()) counts.set(state, (counts.get(state) ?? 0) + 1)
          for (const [status, count] of counts) this.set({ status }, count)
        }
      })
      perCamera("vms_camera_fps", "Frames per second received from the camera (last 5 s)", "gauge", (c) => c.state === "online" ? c.fps : 0)
      perCamera(
        "vms_camera_ingest_bitrate_bits",
        "Video bitrate received from the camera in bits per second (last 5 chunks)",
        "gauge",
        (c) => c.state === "online" ? c.bitrate : 0
      )
      perCamera(
        "vms_camera_ingest_bytes_total",
        "Video bytes received from the camera (rate() of it is the promtool-clean twin of vms_camera_ingest_bitrate_bits)",
        "counter",
        (c) => c.bytes
      )
      perCamera("vms_camera_dropped_frames_total", "Frames ffmpeg dropped while ingesting the camera", "counter", (c) => c.dropped)
      perCamera("vms_pipeline_restarts_total", "Restarts of the camera's ffmpeg pipeline (exit, failure or stall)", "counter", (c) => c.restarts)
      perCamera("vms_pipeline_stalls_total", "Pipelines killed by the watchdog after making no progress", "counter", (c) => c.stalls)
      return CameraMetrics.of({
        status: (camera, state) => {
          sampleOf(camera).state = state
        },
        rates: (camera, framesPerSecond, bits) => {
          const sample = sampleOf(camera)
          sample.fps = framesPerSecond
          sample.bitrate = bits
        },
        droppedFrames: (camera, count) => {
          if (count > 0) sampleOf(camera).dropped += count
        },
        ingestedBytes: (camera, bytes) => {
          sampleOf(camera).bytes += bytes
        },
        restart: (camera) => {
          sampleOf(camera).restarts++
        },
        stall: (camera) => {
          sampleOf(camera).stalls++
        },
        forget: (camera) => {
          cameras.delete(camera)
        }
      })
    })
  )
}

/** What this node knows of one camera, read at scrape time. */
interface CameraSample {
  state: CameraState
  fps: number
  bitrate: number
  bytes: number
  dropped: number
  restarts: number
  stalls: number
}
