/**
 * A live stream's directory: closing the stream moves it out of the way at
 * once and deletes it a few seconds later (a stopping node hands its cameras
 * over first); a new stream in the same place starts empty, and deletes what
 * an earlier process discarded there and could not delete before it exited.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { eventually } from "../../test/support/Eventually.ts"
import { tempDir } from "../../test/support/TestNode.ts"
import * as LiveStream from "./LiveStream.ts"

const options = (dir: string) => ({ dir, windowSize: 4, graceSize: 2 })

describe("LiveStream directory", () => {
  it.live("closing moves the directory away at once and deletes it later; a new stream starts empty", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("live-stream")
      const dir = path.join(root, "cam1")
      const scope = yield* Scope.make()
      const live = yield* LiveStream.make(options(dir)).pipe(Scope.provide(scope))
      yield* live.beginRun
      fs.writeFileSync(path.join(dir, "seg_1.ts"), Buffer.alloc(100))
      yield* live.chunkFinished("seg_1.ts", 1)

      yield* Scope.close(scope, Exit.void)
      assert.isFalse(fs.existsSync(dir), "moved away when the stream closed")
      const discarded = fs.readdirSync(root).filter((name) => name.startsWith("cam1.gone-"))
      assert.strictEqual(discarded.length, 1)
      assert.isTrue(fs.existsSync(path.join(root, discarded[0]!, "seg_1.ts")), "deleted later, not at once")

      const again = yield* LiveStream.make(options(dir))
      assert.deepStrictEqual(fs.readdirSync(dir), [])
      assert.isTrue((yield* again.playlist)._tag === "None")
      yield* eventually(
        "the discarded directory deleted",
        Effect.sync(() => fs.readdirSync(root).some((name) => name.startsWith("cam1.gone-")) ? undefined : true),
        10_000,
        100
      )
    }).pipe(Effect.scoped))

  it.live("a new stream deletes what an exited process discarded in its place, and nothing of other cameras", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("live-stream")
      // Left by a node that exited before its delayed deletes ran (pid 1 is never this process).
      const leftover = path.join(root, "cam1.gone-1-1700000000000-abcdef")
      const otherCamera = path.join(root, "cam10.gone-1-1700000000000-abcdef")
      for (const dir of [leftover, otherCamera]) {
        fs.mkdirSync(dir, { recursive: true })
        fs.writeFileSync(path.join(dir, "seg_7.ts"), Buffer.alloc(100))
      }
      yield* LiveStream.make(options(path.join(root, "cam1")))
      yield* eventually("the leftover deleted", Effect.sync(() => fs.existsSync(leftover) ? undefined : true), 5_000, 50)
      assert.isTrue(fs.existsSync(path.join(otherCamera, "seg_7.ts")))
    }).pipe(Effect.scoped))
})
