/**
 * The local spool: `<data>/spool/<cameraId>/<startMs>.ts`, the MPEG-TS of a
 * segment being recorded or waiting for the store, and `<startMs>.json`
 * beside it, its sidecar. The sidecar is written when the segment opens
 * (camera, start, video) and rewritten when it closes (end, duration), each
 * time by rename, so it is never half written. A segment whose sidecar has
 * no end was left open by a process that died; recovery asks ffprobe.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

export const SpoolSidecar = Schema.Struct({
  cameraId: Schema.String,
  startMs: Schema.Number,
  /** Set when the segment was closed. */
  endMs: Schema.optionalKey(Schema.Number),
  /** Media duration of the chunks appended (set when closed). */
  durationMs: Schema.optionalKey(Schema.Number),
  codec: Schema.NullOr(Schema.String),
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number)
})
export type SpoolSidecar = typeof SpoolSidecar.Type

/** A closed segment waiting in the spool for the store and the index. */
export interface SpooledSegment {
  readonly cameraId: string
  readonly startMs: number
  readonly endMs: number
  readonly durationMs: number
  readonly bytes: number
  readonly codec: string | null
  readonly width: number | null
  readonly height: number | null
  readonly media: string
  readonly sidecar: string
}

export const spoolRoot = (dataDir: string) => path.join(dataDir, "spool")

export const segmentFiles = (root: string, cameraId: string, startMs: number) => {
  const dir = path.join(root, cameraId)
  return { dir, media: path.join(dir, `${startMs}.ts`), sidecar: path.join(dir, `${startMs}.json`) }
}

const decodeSidecar = Schema.decodeUnknownEffect(Schema.fromJsonString(SpoolSidecar))

export const writeSidecar = (file: string, sidecar: SpoolSidecar) =>
  Effect.promise(async () => {
    const temporary = `${file}.tmp`
    await fs.writeFile(temporary, JSON.stringify(sidecar))
    await fs.rename(temporary, file)
  })

/** The sidecar, or undefined when it is missing or unreadable. */
export const readSidecar = (file: string) =>
  Effect.promise(() => fs.readFile(file, "utf8").catch(() => undefined)).pipe(
    Effect.flatMap((text) => text === undefined ? Effect.succeed(undefined) : decodeSidecar(text)),
    Effect.orElseSucceed(() => undefined)
  )

export const removeSegmentFiles = (media: string, sidecar: string) =>
  Effect.promise(() => Promise.all([fs.rm(media, { force: true }), fs.rm(sidecar, { force: true })])).pipe(Effect.asVoid)

export interface LeftOver {
  readonly cameraId: string
  readonly startMs: number
  readonly media: string
  readonly sidecar: string
  readonly bytes: number
}

/** Every segment file in the spool, oldest first (what a previous process left). */
export const scan = (root: string): Effect.Effect<ReadonlyArray<LeftOver>> =>
  Effect.promise(async () => {
    const found: Array<LeftOver> = []
    const cameras = await fs.readdir(root, { withFileTypes: true }).catch(() => [])
    for (const camera of cameras) {
      if (!camera.isDirectory()) continue
      const dir = path.join(root, camera.name)
      for (const name of await fs.readdir(dir).catch((): Array<string> => [])) {
        const match = /^(\d+)\.ts$/.exec(name)
        if (match === null) continue
        const media = path.join(dir, name)
        const stat = await fs.stat(media).catch(() => undefined)
        if (stat === undefined) continue
        found.push({
          cameraId: camera.name,
          startMs: Number(match[1]),
          media,
          sidecar: path.join(dir, `${match[1]}.json`),
          bytes: stat.size
        })
      }
    }
    return found.sort((a, b) => a.startMs - b.startMs)
  })
