/**
 * The live tail a camera's old owner leaves its successor: the old stream
 * gives its newest chunks within a byte budget, the tail survives the trip
 * through a real NATS KV bucket once (taken tails are gone, stale ones are
 * ignored, bytes that do not match their header dropped), and the new stream
 * lists the old chunks as they were, then its own first chunk after a
 * discontinuity, also when its ffmpeg started before the chunks' bytes came.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { natsUrl, testNamespace } from "../../test/support/Nats.ts"
import { tempDir } from "../../test/support/TestNode.ts"
import { NatsBulkClient, NatsClient } from "../sharding/NatsClient.ts"
import { joinFiles, LiveHandover, type LiveTail, splitFiles } from "./LiveHandover.ts"
import * as LiveStream from "./LiveStream.ts"

/** A stream in a fresh directory with `count` finished chunks of 1,000 bytes each, numbered from `first`. */
const streamWithChunks = (first: number, count: number) =>
  Effect.gen(function*() {
    const dir = path.join(yield* tempDir("handover"), "live")
    const live = yield* LiveStream.make({ dir, windowSize: 4, graceSize: 2 })
    if (count > 0) yield* live.beginRun
    for (let sequence = first; sequence < first + count; sequence++) {
      yield* Effect.promise(() => fs.writeFile(path.join(dir, `seg_${sequence}.ts`), Buffer.alloc(1_000, sequence % 256)))
      yield* live.chunkFinished(`seg_${sequence}.ts`, 1.0)
    }
    return { dir, live }
  })

const natsHandover = Effect.gen(function*() {
  const url = yield* natsUrl
  const options = { url, namespace: testNamespace(), name: "handover-test" }
  const context = yield* Layer.build(
    LiveHandover.layerNats.pipe(Layer.provideMerge(Layer.merge(NatsClient.layer(options), NatsBulkClient.layer(options))))
  )
  return Context.get(context, LiveHandover)
})

describe("LiveHandover", () => {
  it.live("the old stream's newest chunks go on in the new stream, then its own chunk after a discontinuity", () =>
    Effect.gen(function*() {
      const old = yield* streamWithChunks(100, 6)
      // The window holds 4 chunks; a budget for about two of them gives the newest two.
      const small = yield* old.live.tail("cam1", "n1", { maxBytes: 4_096 + 2 * 1_256 + 100, maxChunks: 10 })
      assert.deepStrictEqual(small?.header.chunks.map((c) => c.sequence), [104, 105])
      // At most `maxChunks` of them: the newest.
      const few = yield* old.live.tail("cam1", "n1", { maxBytes: 1_000_000, maxChunks: 3 })
      assert.deepStrictEqual(few?.header.chunks.map((c) => c.sequence), [103, 104, 105])
      const tail = (yield* old.live.tail("cam1", "n1", { maxBytes: 1_000_000, maxChunks: 10 }))!
      assert.deepStrictEqual(tail.header.chunks.map((c) => c.sequence), [102, 103, 104, 105])
      assert.deepStrictEqual(tail.files.map((f) => f.length), [1_000, 1_000, 1_000, 1_000])
      assert.strictEqual(tail.files[3]![0], 105)
      // The first run's first chunk carries a discontinuity (it left the window: counted in the sequence).
      assert.strictEqual(tail.header.discontinuitySequence, 1)

      const successor = yield* streamWithChunks(0, 0)
      yield* successor.live.seed({ header: tail.header, files: splitFiles(tail.header, joinFiles(tail.files))! })
      const seeded = Option.getOrThrow(yield* successor.live.playlist)
      assert.include(seeded, "#EXT-X-MEDIA-SEQUENCE:102")
      assert.include(seeded, "#EXT-X-DISCONTINUITY-SEQUENCE:1")
      assert.include(seeded, `#EXT-X-PROGRAM-DATE-TIME:${tail.header.chunks[0]!.programDateTime}`)
      assert.notInclude(seeded, "#EXT-X-DISCONTINUITY\n")
      const copied = yield* Effect.promise(() => fs.readFile(path.join(successor.dir, "seg_105.ts")))
      assert.strictEqual(copied.length, 1_000)
      assert.isTrue(Option.isSome(yield* successor.live.resolve("seg_103.ts")))

      // Seeded chunks are not published (the old owner's recorder had them); the own run's numbers
      // follow theirs, so a player sees one media sequence across the move.
      const first = yield* successor.live.beginRun
      assert.strictEqual(first, 106)
      yield* Effect.promise(() => fs.writeFile(path.join(successor.dir, `seg_${first}.ts`), Buffer.alloc(500)))
      const own = yield* successor.live.chunkFinished(`seg_${first}.ts`, 1.0)
      assert.isTrue(own?.discontinuity)
      const after = Option.getOrThrow(yield* successor.live.playlist)
      assert.include(after, "#EXT-X-MEDIA-SEQUENCE:103")
      assert.include(after, `#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:${own!.programDateTime.toISOString()}`)

      // A stream that already has chunks of its own ignores a late tail.
      const busy = yield* streamWithChunks(500, 1)
      yield* busy.live.seed(tail)
      assert.include(Option.getOrThrow(yield* busy.live.playlist), "#EXT-X-MEDIA-SEQUENCE:500")
    }).pipe(Effect.scoped))

  it("bytes that do not add up to the header's chunks are not cut into files", () => {
    const header = {
      cameraId: "cam1",
      nodeId: "n1",
      savedAt: 1,
      discontinuitySequence: 0,
      chunks: [1, 2].map((sequence) => ({
        sequence,
        uri: `seg_${sequence}.ts`,
        durationSeconds: 1,
        discontinuity: false,
        programDateTime: "2026-01-01T00:00:00.000Z",
        bytes: 2
      }))
    }
    const joined = joinFiles([new Uint8Array([1, 2]), new Uint8Array([3, 4])])
    assert.deepStrictEqual(splitFiles(header, joined)?.map((f) => [...f]), [[1, 2], [3, 4]])
    assert.isUndefined(splitFiles(header, joined.subarray(0, 3)))
    assert.isUndefined(splitFiles(header, joinFiles([joined, new Uint8Array([5])])))
  })

  it.live("a successor's ffmpeg starts before the tail's bytes came; its first chunk is listed after them", () =>
    Effect.gen(function*() {
      const old = yield* streamWithChunks(40, 3)
      const tail = (yield* old.live.tail("cam1", "n1", { maxBytes: 1_000_000, maxChunks: 10 }))!
      const successor = yield* streamWithChunks(0, 0)
      assert.isTrue(yield* successor.live.expectTail(tail.header))
      // Numbering goes on from the tail at once.
      const first = yield* successor.live.beginRun
      assert.strictEqual(first, 43)
      // Its first chunk finishes before the bytes are in: it is listed once they are, after them.
      yield* Effect.promise(() => fs.writeFile(path.join(successor.dir, `seg_${first}.ts`), Buffer.alloc(500)))
      const listing = yield* Effect.forkChild(successor.live.chunkFinished(`seg_${first}.ts`, 1.0))
      yield* Effect.yieldNow
      assert.isTrue(Option.isNone(yield* successor.live.playlist))
      yield* successor.live.seed(tail)
      const own = yield* Fiber.join(listing)
      assert.strictEqual(own?.sequence, 43)
      assert.isTrue(own?.discontinuity)
      const playlist = Option.getOrThrow(yield* successor.live.playlist)
      assert.include(playlist, "#EXT-X-MEDIA-SEQUENCE:40")
      assert.deepStrictEqual([...playlist.matchAll(/seg_(\d+)\.ts/g)].map((m) => Number(m[1])), [40, 41, 42, 43])

      // Bytes lost on the way: nothing of the tail is listed, and the own chunk does not wait.
      const orphan = yield* streamWithChunks(0, 0)
      assert.isTrue(yield* orphan.live.expectTail(tail.header))
      const next = yield* orphan.live.beginRun
      yield* orphan.live.seed(undefined)
      yield* Effect.promise(() => fs.writeFile(path.join(orphan.dir, `seg_${next}.ts`), Buffer.alloc(500)))
      assert.strictEqual((yield* orphan.live.chunkFinished(`seg_${next}.ts`, 1.0))?.sequence, 43)
      assert.include(Option.getOrThrow(yield* orphan.live.playlist), "#EXT-X-MEDIA-SEQUENCE:43")
      // A stream that has run already does not take a tail.
      assert.isFalse(yield* orphan.live.expectTail(tail.header))

      // Bytes that never come: the first chunk waits tailWaitMs once, the next ones not at all,
      // and a tail that turns up after that is not listed before chunks already served.
      const stranded = yield* streamWithChunks(0, 0)
      assert.isTrue(yield* stranded.live.expectTail(tail.header))
      const ownFirst = yield* stranded.live.beginRun
      for (const n of [ownFirst, ownFirst + 1]) yield* Effect.promise(() => fs.writeFile(path.join(stranded.dir, `seg_${n}.ts`), Buffer.alloc(500)))
      const waitStart = Date.now()
      yield* stranded.live.chunkFinished(`seg_${ownFirst}.ts`, 1.0)
      assert.isAtLeast(Date.now() - waitStart, LiveStream.tailWaitMs - 50)
      const nextStart = Date.now()
      yield* stranded.live.chunkFinished(`seg_${ownFirst + 1}.ts`, 1.0)
      assert.isBelow(Date.now() - nextStart, 500)
      yield* stranded.live.seed(tail)
      assert.include(Option.getOrThrow(yield* stranded.live.playlist), "#EXT-X-MEDIA-SEQUENCE:43")
    }).pipe(Effect.scoped))

  it.live("through NATS: taken once, stale tails and other cameras' keys ignored, unsafe names never written", () =>
    Effect.gen(function*() {
      const handover = yield* natsHandover
      assert.isAbove(handover.maxBytes, 500_000)
      const old = yield* streamWithChunks(7, 3)
      const tail = (yield* old.live.tail("cam/1", "n1", handover))!
      yield* handover.save(tail)
      assert.isUndefined(yield* handover.take("cam/2"))
      const taken = yield* handover.take("cam/1")
      assert.deepStrictEqual(taken?.header.chunks.map((c) => c.sequence), [7, 8, 9])
      const files = yield* taken!.files
      assert.deepStrictEqual([...files![2]!], [...tail.files[2]!])
      assert.isUndefined(yield* handover.take("cam/1"), "a tail is taken once")
      assert.isUndefined(yield* taken!.files, "its bytes too")

      // Saved twice (a move back and forth): the header names its own bytes, an older header none.
      yield* handover.save(tail)
      const first = (yield* handover.take("cam/1"))!
      yield* handover.save({ ...tail, files: tail.files.map((f) => f.map(() => 0)) })
      assert.isUndefined(yield* first.files)
      assert.deepStrictEqual([...(yield* (yield* handover.take("cam/1"))!.files)![0]!], [...tail.files[0]!.map(() => 0)])

      // Left by an owner that stopped long ago (then a crash, another move): old video, not a handover.
      yield* handover.save({ ...tail, header: { ...tail.header, savedAt: Date.now() - 60_000 } })
      assert.isUndefined(yield* handover.take("cam/1"))

      // A chunk name that is not one of ours is skipped, not written.
      const hostile: LiveTail = {
        header: { ...tail.header, chunks: tail.header.chunks.map((c, i) => i === 0 ? { ...c, uri: "../escape.ts" } : c) },
        files: tail.files
      }
      const successor = yield* streamWithChunks(0, 0)
      yield* successor.live.seed(hostile)
      const exists = yield* Effect.promise(() => fs.stat(path.join(successor.dir, "..", "escape.ts")).then(() => true, () => false))
      assert.isFalse(exists)
      assert.include(Option.getOrThrow(yield* successor.live.playlist), "#EXT-X-MEDIA-SEQUENCE:8")
    }).pipe(Effect.scoped))
})
