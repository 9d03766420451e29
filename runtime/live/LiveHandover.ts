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
 * One node alone has nobody to hand over to: its layer saves nothing.
 */
import type { KV } from "@nats-io/kv"
import { Context, Effect, Layer, Schema } from "effect"
import { NatsClient } from "../sharding/NatsClient.ts"
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

const decodeHeader = Schema.decodeUnknownExit(Schema.fromJsonString(TailHeader))

/** `[u32 header length][header JSON][chunk bytes…]`. */
export const encodeTail = (tail: LiveTail): Uint8Array => {
  const header = new TextEncoder().encode(JSON.stringify(tail.header))
  const body = new Uint8Array(4 + header.length + tail.files.reduce((n, f) => n + f.length, 0))
  new DataView(body.buffer).setUint32(0, header.length)
  body.set(header, 4)
  let offset = 4 + header.length
  for (const file of tail.files) {
    body.set(file, offset)
    offset += file.length
  }
  return body
}

/** The tail in `data`, or undefined when it does not decode (never half-read). */
export const decodeTail = (data: Uint8Array): LiveTail | undefined => {
  if (data.length < 4) return undefined
  const headerLength = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
  if (4 + headerLength > data.length) return undefined
  const header = decodeHeader(new TextDecoder().decode(data.subarray(4, 4 + headerLength)))
  if (header._tag === "Failure") return undefined
  const files: Array<Uint8Array> = []
  let offset = 4 + headerLength
  for (const chunk of header.value.chunks) {
    if (offset + chunk.bytes > data.length) return undefined
    files.push(data.subarray(offset, offset + chunk.bytes))
    offset += chunk.bytes
  }
  return offset === data.length ? { header: header.value, files } : undefined
}

export class LiveHandover extends Context.Service<LiveHandover, {
  /** The most bytes one tail may hold (headers included). */
  readonly maxBytes: number
  /** Saves the tail of a camera this node is about to stop running. Never fails: a lost tail is a longer gap. */
  readonly save: (tail: LiveTail) => Effect.Effect<void>
  /** Takes (and removes) the camera's tail if a fresh one was left for it. */
  readonly take: (cameraId: string) => Effect.Effect<LiveTail | undefined>
}>()("vms/runtime/live/LiveHandover") {
  /** One node: no successor to hand anything to. */
  static readonly layerLocal = Layer.succeed(LiveHandover, LiveHandover.of({
    maxBytes: 0,
    save: () => Effect.void,
    take: () => Effect.succeed(undefined)
  }))

  static readonly layerNats = Layer.effect(
    LiveHandover,
    Effect.gen(function*() {
      const nats = yield* NatsClient
      const kv: KV = yield* nats.bucket("live_tails", { maxAgeMs: 30_000 })
      // A message must fit the server's max_payload (1 MB by default) with room for NATS headers.
      const maxBytes = Math.max(0, (nats.connection.info?.max_payload ?? 1_048_576) - 16_384)
      const key = (cameraId: string) => `tail.${keyToken(cameraId)}`
      const save = (tail: LiveTail) =>
        Effect.tryPromise(() => kv.put(key(tail.header.cameraId), encodeTail(tail))).pipe(
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
      const take = (cameraId: string) =>
        Effect.gen(function*() {
          const entry = yield* Effect.tryPromise(() => kv.get(key(cameraId)))
          if (entry === null || entry.operation !== "PUT") return undefined
          // Deleted against the revision read: a tail saved meanwhile by a newer leaver stays.
          yield* Effect.tryPromise(() => kv.delete(key(cameraId), { previousSeq: entry.revision })).pipe(Effect.ignore)
          const tail = decodeTail(entry.value)
          if (tail === undefined) {
            yield* Effect.logWarning("dropped a live tail that did not decode").pipe(Effect.annotateLogs({ cameraId }))
            return undefined
          }
          return tail.header.cameraId === cameraId && Date.now() - tail.header.savedAt <= freshMs ? tail : undefined
        }).pipe(
          Effect.catch((error) =>
            Effect.as(
              Effect.logWarning("could not read the camera's live tail").pipe(Effect.annotateLogs({ cameraId, error: String(error) })),
              undefined
            )
          )
        )
      return LiveHandover.of({ maxBytes, save, take })
    })
  )
}
