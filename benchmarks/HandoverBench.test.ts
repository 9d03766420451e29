import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ffmpegPath, sharedClipDir } from "../protocols/rtsp/testing/SharedClip.ts"
import { natsUrl } from "../test/support/Nats.ts"
import { redisUrl } from "../test/support/Redis.ts"
import { runHandoverBench } from "./HandoverBench.ts"

describe("HandoverBench", () => {
  it.live("stops the busiest of three nodes with SIGTERM, measures its cameras' live gaps and writes the results", () =>
    Effect.gen(function*() {
      const resultsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "vms-bench-handover-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(resultsDir, { recursive: true, force: true })))
      const result = yield* runHandoverBench({
        cameras: 4,
        stops: 1,
        dataDir: sharedClipDir,
        ffmpegPath,
        resultsDir,
        natsUrl: yield* natsUrl,
        redisUrl: yield* redisUrl
      })
      const json = JSON.parse(Fs.readFileSync(Path.join(resultsDir, "handover.json"), "utf8"))
      assert.deepStrictEqual(json, JSON.parse(JSON.stringify(result)))
      const [run] = json.runs
      assert.strictEqual(json.stops, 1)
      assert.strictEqual(json.notMoved, 0)
      assert.strictEqual(json.samples, run.cameras)
      assert.isAbove(json.samples, 0)
      // Handed over, not restarted: every new owner went on from the leaver's tail, and the node exited cleanly.
      assert.strictEqual(json.withoutTail, 0, JSON.stringify(run.tailChunks))
      assert.strictEqual(run.exitCode, 0)
      assert.strictEqual(run.ffmpegsLeft, 0)
      // A real gap (the next keyframe alone can be up to 1 s away), and not a restart's (seconds).
      assert.isTrue(json.mediaGapMs.max > 0 && json.mediaGapMs.max < 4_000, JSON.stringify(json.mediaGapMs))
      assert.match(Fs.readFileSync(Path.join(resultsDir, "handover.md"), "utf8"), /^\| 1 \| \d+ \| 0 \| 0 \| /m)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), 150_000)
})
