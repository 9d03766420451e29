/**
 * The recording metrics: segments and bytes stored and gaps cut (per
 * camera), upload time, the spool's backlog (segments and bytes waiting for
 * the store) and what retention deleted.
 */
import { Context, Effect, Layer } from "effect"
import client from "prom-client"
import { Metrics } from "./Metrics.ts"

export class RecordingMetrics extends Context.Service<RecordingMetrics, {
  readonly stored: (cameraId: string, bytes: number, uploadSeconds: number) => void
  readonly gap: (cameraId: string) => void
  readonly backlog: (segments: number, bytes: number) => void
  readonly deleted: (reason: "age" | "budget", count: number) => void
}>()("vms/runtime/metrics/RecordingMetrics") {
  static readonly layer = Layer.effect(
    RecordingMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const segments = new client.Counter({
        name: "vms_recording_segments_total",
        help: "Recorded segments stored and indexed by this node",
        labelNames: ["camera"],
        registers: [registry]
      })
      const bytes = new client.Counter({
        name: "vms_recording_bytes_total",
        help: "Bytes of recorded segments stored by this node",
        labelNames: ["camera"],
        registers: [registry]
      })
      const gaps = new client.Counter({
        name: "vms_recording_gaps_total",
        help: "Segments closed early by a gap (ffmpeg restart, missing chunk, clock jump)",
        labelNames: ["camera"],
        registers: [registry]
      })
      const upload = new client.Histogram({
        name: "vms_recording_upload_seconds",
        help: "Time to put one segment in the object store",
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry]
      })
      const backlogSegments = new client.Gauge({
        name: "vms_recording_backlog_segments",
        help: "Closed segments in this node's spool waiting for the object store",
        registers: [registry]
      })
      const backlogBytes = new client.Gauge({
        name: "vms_recording_backlog_bytes",
        help: "Bytes of closed segments in this node's spool waiting for the object store",
        registers: [registry]
      })
      const deleted = new client.Counter({
        name: "vms_recording_retention_deleted_segments_total",
        help: "Segments deleted by retention, by reason (age or byte budget)",
        labelNames: ["reason"],
        registers: [registry]
      })
      backlogSegments.set(0)
      backlogBytes.set(0)
      return RecordingMetrics.of({
        stored: (camera, size, seconds) => {
          segments.inc({ camera })
          bytes.inc({ camera }, size)
          upload.observe(seconds)
        },
        gap: (camera) => gaps.inc({ camera }),
        backlog: (count, size) => {
          backlogSegments.set(count)
          backlogBytes.set(size)
        },
        deleted: (reason, count) => deleted.inc({ reason }, count)
      })
    })
  )
}
