/**
 * What recording tests read back from a node: its index rows (straight from
 * Postgres), camera statuses over REST, the spool's files, and ffprobe's
 * view of a file or URL.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { requireBinary } from "./Binaries.ts"
import { eventually } from "./Eventually.ts"
import { request } from "./NodeHttp.ts"

export interface Row {
  readonly id: string
  readonly startMs: number
  readonly endMs: number
  readonly durationMs: number
  readonly bytes: number
  readonly objectKey: string
  readonly codec: string | null
  readonly width: number | null
  readonly height: number | null
  readonly nodeId: string
}

export const rowsOf = (cameraId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<Row>`
      SELECT id::text AS id, (extract(epoch FROM start_time) * 1000)::float8 AS "startMs",
        (extract(epoch FROM end_time) * 1000)::float8 AS "endMs", duration_ms AS "durationMs", bytes::float8 AS bytes,
        object_key AS "objectKey", codec, width, height, node_id AS "nodeId"
      FROM recordings WHERE camera_id = ${cameraId} ORDER BY start_time`.pipe(Effect.orDie))

export const waitRows = (cameraId: string, count: number, timeoutMs: number) =>
  eventually(`${count} rows for ${cameraId}`, Effect.map(rowsOf(cameraId), (rows) => rows.length >= count ? rows : undefined), timeoutMs, 200)

export const statusOf = (id: string) => Effect.map(request("GET", `/api/v1/cameras/${id}/status`), (r) => r.json())

export const waitStatus = (id: string, status: string, timeoutMs: number) =>
  eventually(`${id} ${status}`, Effect.map(statusOf(id), (s) => s.status === status ? s : undefined), timeoutMs)

export const addRecordingCamera = (id: string, url: string) =>
  Effect.gen(function*() {
    const created = yield* request("POST", "/api/v1/cameras", { id, name: `Camera ${id}`, url, recording: true })
    if (created.status !== 201) return yield* Effect.die(new Error(`POST camera ${id}: ${created.status} ${created.text}`))
  })

export const spoolFiles = (dataDir: string, cameraId: string) => {
  const dir = path.join(dataDir, "spool", cameraId)
  return fs.existsSync(dir) ? fs.readdirSync(dir) : []
}

/** The first gap between consecutive rows (rows of one ffmpeg run abut exactly), as the index of the row after it. */
export const gapAfter = (rows: ReadonlyArray<Row>) => {
  for (let i = 1; i < rows.length; i++) if (rows[i]!.startMs > rows[i - 1]!.endMs) return i
  return undefined
}

export interface Probe {
  readonly durationSeconds: number
  readonly streams: ReadonlyArray<readonly [string, number, number]>
  /** Video packet timestamps in decode order. */
  readonly times: ReadonlyArray<number>
}

/**
 * ffprobe's view of a file or URL. Asynchronous: a URL may be served by the
 * node in this very process, which a synchronous spawn would deadlock.
 */
export const probe = (input: string): Effect.Effect<Probe> =>
  Effect.callback<Probe>((resume) => {
    execFile(requireBinary("ffprobe"), [
      "-v", "error", "-select_streams", "v:0",
      "-show_entries", "format=duration:stream=codec_name,width,height:packet=dts_time",
      "-of", "json", input
    ], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) return resume(Effect.die(new Error(`ffprobe ${input}: ${stderr}`)))
      const parsed = JSON.parse(stdout) as {
        format: { duration: string }
        streams: Array<{ codec_name: string; width: number; height: number }>
        packets?: Array<{ dts_time?: string }>
      }
      resume(Effect.succeed({
        durationSeconds: Number(parsed.format.duration),
        streams: parsed.streams.map((s) => [s.codec_name, s.width, s.height] as const),
        times: (parsed.packets ?? []).map((p) => Number(p.dts_time)).filter((t) => Number.isFinite(t))
      }))
    })
  })

/** Packet-to-packet steps larger than `maxStep` seconds (or backwards). */
export const timestampJumps = (times: ReadonlyArray<number>, maxStep: number) => {
  const jumps: Array<{ readonly at: number; readonly step: number }> = []
  for (let i = 1; i < times.length; i++) {
    const step = times[i]! - times[i - 1]!
    if (step > maxStep || step <= 0) jumps.push({ at: i, step })
  }
  return jumps
}
