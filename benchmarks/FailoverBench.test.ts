import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ffmpegPath, sharedClipDir } from "../protocols/rtsp/testing/SharedClip.ts"
import { natsUrl } from "../test/support/Nats.ts"
import { redisUrl } from "../test/support/Redis.ts"
import { runFailoverBench } from "./FailoverBench.ts"

describe("FailoverBench", () => {
  it.live("kills the busiest of three nodes, times its cameras back online on the survivors and writes the results", () =>
    Effect.gen(function*() {
      const resultsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "vms-bench-failover-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(resultsDir, { recursive: true, force: true })))
      const result = yield* runFailoverBench({
        cameras: 4,
        kills: 1,
        dataDir: sharedClipDir,
        ffmpegPath,
        resultsDir,
        natsUrl: yield* natsUrl,
        redisUrl: yield* redisUrl
      })
      const json = JSON.parse(Fs.readFileSync(Path.join(resultsDir, "failover.json"), "utf8"))
      assert.deepStrictEqual(json, JSON.parse(JSON.stringify(result)))
      assert.strictEqual(json.kills, 1)
      assert.strictEqual(json.notRecovered, 0)
      assert.strictEqual(json.samples, json.runs[0].cameras)
      assert.isAbove(json.samples, 0)
      // Back after the lease lapsed and a new ffmpeg delivered its first chunk: more than a second, less than 20.
      assert.isTrue(json.recoveryMs.p50 > 1_000 && json.recoveryMs.max < 20_000, JSON.stringify(json.recoveryMs))
      assert.match(Fs.readFileSync(Path.join(resultsDir, "failover.md"), "utf8"), /^\| 1 \| \d+ \| 0 \| /m)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), 120_000)
})
