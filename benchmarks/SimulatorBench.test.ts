import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ffmpegPath, sharedClipDir } from "../protocols/rtsp/testing/SharedClip.ts"
import { cpuPercent, sampleProcess } from "./ProcessSampler.ts"
import { runSimulatorBench } from "./SimulatorBench.ts"

describe("SimulatorBench", () => {
  it.live("measures a separate simulator process and writes JSON and Markdown results", () =>
    Effect.gen(function*() {
      const resultsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "vms-bench-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(resultsDir, { recursive: true, force: true })))
      const result = yield* runSimulatorBench({
        cameras: 3,
        durationSeconds: 5,
        warmupSeconds: 1,
        dataDir: sharedClipDir,
        ffmpegPath,
        resultsDir
      })
      assert.strictEqual(result.clients.receiving, 3)
      assert.strictEqual(result.clients.stalled, 0)
      assert.isTrue(result.clients.fpsMin > 14 && result.clients.fpsMax < 16, JSON.stringify(result.clients))
      assert.isAbove(result.simulator.rssMegabytes, 10)
      assert.isAbove(result.simulator.sentMegabitsPerSecond, 2)
      const json = JSON.parse(Fs.readFileSync(Path.join(resultsDir, "simulator.json"), "utf8"))
      assert.strictEqual(json.cameras, 3)
      assert.strictEqual(json.machine.node, process.version)
      const markdown = Fs.readFileSync(Path.join(resultsDir, "simulator.md"), "utf8")
      assert.include(markdown, "| streams | 3 |")
      assert.include(markdown, "per stream")
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))

  it.effect("samples CPU time and RSS of a process from /proc", () =>
    Effect.gen(function*() {
      const from = yield* sampleProcess(process.pid)
      let spin = 0
      while (Date.now() - from.atMs < 200) spin++
      const to = yield* sampleProcess(process.pid)
      assert.isAbove(spin, 0)
      assert.isAbove(to.rssBytes, 1024 * 1024)
      assert.isAtLeast(to.cpuTicks, from.cpuTicks)
      assert.isAbove(cpuPercent(from, to, 100), 20)
    }).pipe(Effect.provide(NodeServices.layer)))
})
