/**
 * The tail of a camera's live stream, handed from the node that stops
 * running the camera (SIGTERM, a rebalance) to the node that takes it over.
 *
 * Stopping ffmpeg closes the chunk it was writing: up to a second of video
 * that only the leaving node ever had, listed in its playlist for the few
 * hundred milliseconds before it exits. The leaver saves its newest chunks
 * (files and playlist entries) here while it still holds the camera's lease,
 * before releasing it; the successor takes them when it starts the camera,
 * so its playlist goes on from where the leaver's ended: the same sequence
 * numbers and media times, then a discontinuity before its own first chunk.
 *
 * In cluster mode the tails live in a memory-backed NATS KV bucket whose
 * entries lapse after 30 s; a tail is deleted once taken and ignored once
 * older than `freshMs`, so a later move (or a crash) never replays old video.
 * A tail is two entries: the chunks' bytes (hundreds of kilobytes) and a
 * small header, both carrying the same random id. The successor reads the
 * header first, so it can start ffmpeg (whose chunks are numbered on from the
 * tail's) while the bytes are still on their way. Both are sent at once,
 * bytes first, on a second NATS connection of the node's (`NatsBulkClient`,
 * so they never hold up lease traffic): JetStream stores one connection's
 * messages to a stream in the order sent, so a successor that sees the
 * header finds the bytes (or later ones, with another id: then it lists
 * nothing). A tail is the newest `tailChunks` chunks.
 * One node alone has nobody to hand over to: its layer saves nothing.
 */
import type { KV } from "@nats-io/kv"
import { Context, Effect, Layer, Schema, Semaphore } from "effect"
import { randomBytes } from "node:crypto"
import { NatsBulkClient, NatsClient } from "../sharding/NatsClient.ts"
import { keyToken } from "../sharding/ShardLeaseBook.ts"

export const TailChunk = Schema.Struct({
  sequence: Schema.Int,
  uri: Schema.String,
  durationSeconds: Schema.Number,
  discontinuity: Schema.Boolean,
  programDateTime: Schema.String,
  bytes: Schema.Int
})
export type TailChunk = typeof TailChunk.Type

/** What the header of a saved tail holds; the chunks' bytes follow it in order. */
export const TailHeader = Schema.Struct({
  cameraId: Schema.String,
  nodeId: Schema.String,
  /** Wall-clock ms when it was saved. */
  savedAt: Schema.Number,
  /** The discontinuity sequence of the playlist as it starts with `chunks[0]`. */
  discontinuitySequence: Schema.Int,
  chunks: Schema.Array(TailChunk)
})
export type TailHeader = typeof TailHeader.Type

export interface LiveTail {
  readonly header: TailHeader
  /** One buffer per chunk, in `header.chunks` order. */
  readonly files: ReadonlyArray<Uint8Array>
}

/** A tail older than this when its successor starts is old video, not a handover. */
export const freshMs = 10_000

/** A tail's id: 32 hex characters, the first bytes of its bytes entry. */
const filesIdLength = 32

/** The header entry: the tail's header and the id its bytes entry starts with. */
const StoredHeader = Schema.Struct({ header: TailHeader, filesId: Schema.String })
const decodeStoredHeader = Schema.decodeUnknownExit(Schema.fromJsonString(StoredHeader))

/** The chunks' bytes, one after the other, as the bytes entry holds them. */
export const joinFiles = (files: ReadonlyArray<Uint8Array>): Uint8Array => {
  const body = new Uint8Array(files.reduce((n, f) => n + f.length, 0))
  let offset = 0
  for (const file of files) {
    body.set(file, offset)
    offset += file.length
  }
  return body
}

/** The bytes entry cut into the header's chunks, or undefined when the sizes do not add up (never half-read). */
export const splitFiles = (header: TailHeader, data: Uint8Array): ReadonlyArray<Uint8Array> | undefined => {
  const files: Array<Uint8Array> = []
  let offset = 0
  for (const chunk of header.chunks) {
    if (offset + chunk.bytes > data.length) return undefined
    files.push(data.subarray(offset, offset + chunk.bytes))
    offset += chunk.bytes
  }
  return offset === data.length ? files : undefined
}

/** A tail taken by a successor: its header at once, its chunks' bytes when asked. */
export interface TakenTail {
  readonly header: TailHeader
  /** The chunks' bytes in header order; undefined when they are gone or do not match the header. */
  readonly files: Effect.Effect<ReadonlyArray<Uint8Array> | undefined>
}

/** How much of its live stream a leaver hands over. */
export interface TailLimits {
  /** The most bytes one tail may hold (headers included). */
  readonly maxBytes: number
  /** The most chunks one tail may hold. */
  readonly maxChunks: number
}

/**
 * The chunks a tail holds: a player that follows the camera across the move
 * has loaded up to a chunk or two before the leaver's last one, and needs the
 * rest; one that starts on the new owner begins three chunks from the live
 * edge. More only adds bytes the leaver must send through NATS before it lets
 * each camera go (the whole 6-chunk window, ~750 kB per camera at 1 Mbit/s,
 * put a dozen stopping cameras' saves ~0.3 s behind each other).
 */
export const tailChunks = 3

export class LiveHandover extends Context.Service<LiveHandover, TailLimits & {
  /** Saves the tail of a camera this node is about to stop running. Never fails: a lost tail is a longer gap. */
  readonly save: (tail: LiveTail) => Effect.Effect<void>
  /** Takes (and removes) the camera's tail if a fresh one was left for it: its header now, its bytes on demand. */
  readonly take: (cameraId: string) => Effect.Effect<TakenTail | undefined>
}>()("vms/runtime/live/LiveHandover") {
  /** One node: no successor to hand anything to. */
  static readonly layerLocal = Layer.succeed(LiveHandover, LiveHandover.of({
    maxBytes: 0,
    maxChunks: 0,
    save: () => Effect.void,
    take: () => Effect.succeed(undefined)
  }))

  static readonly layerNats = Layer.effect(
    LiveHandover,
    Effect.gen(function*() {
      const nats = yield* NatsClient
      // Both entries are written, and the bytes read, on the bulk connection (one connection keeps
      // their order); the small headers are read on the node's own, ahead of other cameras' bytes.
      const control: KV = yield* nats.bucket("live_tails", { maxAgeMs: 30_000 })
      const bulk: KV = yield* (yield* NatsBulkClient).bucket("live_tails", { maxAgeMs: 30_000 })
      // A message must fit the server's max_payload (1 MB by default) with room for NATS headers.
      const maxBytes = Math.max(0, (nats.connection.info?.max_payload ?? 1_048_576) - 16_384)
      const key = (cameraId: string) => `tail.${keyToken(cameraId)}`
      const filesKey = (cameraId: string) => `tailfiles.${keyToken(cameraId)}`
      const encoder = new TextEncoder()
      const decoder = new TextDecoder()
      const save = (tail: LiveTail) =>
        Effect.tryPromise(async () => {
          const filesId = randomBytes(filesIdLength / 2).toString("hex")
          // Not one after the other: the leaver's shard (and so the successor's start) waits for both.
          await Promise.all([
            bulk.put(filesKey(tail.header.cameraId), joinFiles([encoder.encode(filesId), ...tail.files])),
            bulk.put(key(tail.header.cameraId), JSON.stringify({ header: tail.header, filesId }))
          ])
        }).pipe(
          Effect.tap(() =>
            Effect.logDebug("saved the camera's live tail for its successor").pipe(
              Effect.annotateLogs({ cameraId: tail.header.cameraId, chunks: tail.header.chunks.length })
            )
          ),
          Effect.catch((error) =>
            Effect.logWarning("could not save the camera's live tail").pipe(
              Effect.annotateLogs({ cameraId: tail.header.cameraId, error: String(error) })
            )
          )
        )
      const couldNotRead = (cameraId: string) => (error: unknown) =>
        Effect.as(
          Effect.logWarning("could not read the camera's live tail").pipe(Effect.annotateLogs({ cameraId, error: String(error) })),
          undefined
        )
      // One tail's bytes on their way at a time: a dozen cameras moving here at once fetched their
      // bytes together, and every camera's came as late as the last one's (and the headers the
      // next cameras waited for queued behind them, before headers had the node's own connection).
      const oneAtATime = yield* Semaphore.make(1)
      const files = (cameraId: string, header: TailHeader, filesId: string) =>
        Effect.gen(function*() {
          const entry = yield* oneAtATime.withPermits(1)(Effect.tryPromise(() => bulk.get(filesKey(cameraId))))
          // Another leaver's bytes (a later save) or none: the header's chunks are not there.
          if (entry === null || entry.operation !== "PUT") return undefined
          if (decoder.decode(entry.value.subarray(0, filesIdLength)) !== filesId) return undefined
          yield* Effect.tryPromise(() => bulk.delete(filesKey(cameraId), { previousSeq: entry.revision })).pipe(Effect.ignore)
          const split = splitFiles(header, entry.value.subarray(filesIdLength))
          if (split === undefined) yield* Effect.logWarning("dropped a live tail whose bytes do not match its header").pipe(Effect.annotateLogs({ cameraId }))
          return split
        }).pipe(Effect.catch(couldNotRead(cameraId)))
      /** The header revision this node took last, per camera: taken once even before its delete lands. */
      const takenHere = new Map<string, number>()
      const take = (cameraId: string) =>
        Effect.gen(function*() {
          const entry = yield* Effect.tryPromise(() => control.get(key(cameraId)))
          if (entry === null || entry.operation !== "PUT" || takenHere.get(cameraId) === entry.revision) return undefined
          takenHere.set(cameraId, entry.revision)
          // Deleted against the revision read: a tail saved meanwhile by a newer leaver stays. Not
          // waited for (one NATS round trip): the camera's ffmpeg starts once this answers.
          control.delete(key(cameraId), { previousSeq: entry.revision }).catch(() => undefined)
          const stored = decodeStoredHeader(entry.string())
          if (stored._tag === "Failure") {
            yield* Effect.logWarning("dropped a live tail that did not decode").pipe(Effect.annotateLogs({ cameraId }))
            return undefined
          }
          const { filesId, header } = stored.value
          if (header.cameraId !== cameraId || Date.now() - header.savedAt > freshMs) return undefined
          return { header, files: files(cameraId, header, filesId) } satisfies TakenTail
        }).pipe(Effect.catch(couldNotRead(cameraId)))
      return LiveHandover.of({ maxBytes, maxChunks: tailChunks, save, take })
    })
  )
}
