import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { startTestSimulator } from "../../protocols/rtsp/testing/TestSimulator.ts"
import { ffmpegPath } from "../../protocols/rtsp/testing/SharedClip.ts"
import { eventually } from "../../test/support/Eventually.ts"
import { tempDir } from "../../test/support/TestNode.ts"
import * as LiveStream from "../live/LiveStream.ts"
import { CameraMetrics } from "../metrics/CameraMetrics.ts"
import { Metrics } from "../metrics/Metrics.ts"
import { defaultBackoff } from "./Backoff.ts"
import * as Pipeline from "./Pipeline.ts"
import { SpawnPacer } from "./SpawnPacer.ts"

const services = Layer.mergeAll(NodeServices.layer, SpawnPacer.layer, CameraMetrics.layer).pipe(
  Layer.provideMerge(Metrics.layer)
)

interface Observed {
  readonly states: Array<{ readonly state: Pipeline.PipelineState; readonly reason: string | null; readonly at: number }>
  readonly live: LiveStream.LiveStream
  readonly fiber: Fiber.Fiber<never>
  readonly current: () => Pipeline.PipelineState | undefined
}

const startPipeline = (url: string, overrides: Partial<Pipeline.PipelineOptions> = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("pipeline")
    const live = yield* LiveStream.make({ dir: path.join(dir, "live"), windowSize: 6, graceSize: 6 })
    const states: Observed["states"] = []
    const fiber = yield* Pipeline.run({
      cameraId: "cam",
      url,
      ffmpegPath,
      live,
      backoff: defaultBackoff,
      stallMs: 10_000,
      failuresBeforeError: 2,
      chunkSeconds: 1,
      socketTimeoutMs: 5_000,
      ...overrides
    }, {
      state: (state, reason) => Effect.sync(() => void states.push({ state, reason, at: Date.now() })),
      rates: () => Effect.void,
      streamInfo: () => Effect.void
    }).pipe(Effect.forkScoped)
    return { states, live, fiber, current: () => states.at(-1)?.state } satisfies Observed
  })

const waitFor = (observed: Observed, state: Pipeline.PipelineState, timeoutMs: number) =>
  eventually(`pipeline ${state}`, Effect.sync(() => observed.current() === state ? true : undefined), timeoutMs)

/** The ingest ffmpegs on the machine (those pulling `url` only, when given), by pid. */
const ingestFfmpegs = (url?: string) =>
  Effect.promise(async () => {
    const pids: Array<number> = []
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")
      if (!cmdline.startsWith(`${ffmpegPath}\0`) || !cmdline.includes("seg_%d.ts")) continue
      if (url === undefined || cmdline.includes(`\0${url}\0`)) pids.push(Number(entry))
    }
    return pids
  })
const ffmpegPids = ingestFfmpegs()

const live = <A, E>(effect: Effect.Effect<A, E, any>) =>
  effect.pipe(Effect.scoped, Effect.provide(services)) as Effect.Effect<A, E>

describe("camera pipeline", () => {
  it.live("goes online within 5 s and lists whole 1 s chunks in a live playlist", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const started = Date.now()
      const observed = yield* startPipeline(simulator.url(0))
      yield* waitFor(observed, "online", 5_000)
      assert.isBelow(Date.now() - started, 5_000)
      const playlist = yield* eventually("3 chunks listed", Effect.map(observed.live.playlist, (text) =>
        Option.isSome(text) && text.value.split("#EXTINF").length > 3 ? text.value : undefined), 8_000)
      assert.match(playlist, /^#EXTM3U\n/)
      assert.match(playlist, /#EXT-X-TARGETDURATION:\d+\n/)
      const durations = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]))
      // The simulator's GOP is 1 s: after the first chunk every chunk is one GOP.
      for (const d of durations.slice(1)) assert.approximately(d, 1, 0.1)
      // One run: only its first chunk starts with a discontinuity (a player that followed the camera
      // from an earlier run or node gets timestamps that start over).
      assert.strictEqual(playlist.split("#EXT-X-DISCONTINUITY\n").length, 2)
      assert.match(playlist, /#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXTINF:[^\n]+\nseg_/)
    })))

  it.live("restarts after the source drops, with a discontinuity, and continues numbering", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const observed = yield* startPipeline(simulator.url(0))
      yield* waitFor(observed, "online", 5_000)
      const before = yield* eventually("a chunk", Effect.map(observed.live.newest, Option.getOrUndefined), 5_000)
      yield* simulator.refuse(0)
      yield* simulator.drop(0)
      yield* eventually("left online", Effect.sync(() => observed.current() !== "online" ? true : undefined), 5_000)
      yield* simulator.resume(0)
      yield* waitFor(observed, "online", 10_000)
      // The restarted run's first chunk, after the chunks of the first run, starts with a discontinuity.
      const restartedAt = (text: string) =>
        [...text.matchAll(/#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXTINF:[^\n]+\nseg_(\d+)\.ts/g)]
          .some((m) => Number(m[1]) > before.sequence)
      const playlist = yield* eventually("a discontinuity in the playlist", Effect.map(observed.live.playlist, (text) =>
        Option.isSome(text) && restartedAt(text.value) ? text.value : undefined), 5_000)
      const sequences = [...playlist.matchAll(/seg_(\d+)\.ts/g)].map((m) => Number(m[1]))
      for (let i = 1; i < sequences.length; i++) assert.strictEqual(sequences[i], sequences[i - 1]! + 1)
      assert.isAbove(sequences.at(-1)!, before.sequence)
    })))

  it.live("kills a hung run with the watchdog and restarts it", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const observed = yield* startPipeline(simulator.url(0))
      yield* waitFor(observed, "online", 5_000)
      yield* simulator.hang(0)
      const hungAt = Date.now()
      const stalled = yield* eventually("watchdog restart", Effect.sync(() =>
        observed.states.find((s) => s.at >= hungAt && s.reason?.includes("no video") === true)), 15_000)
      assert.isBelow(stalled.at - hungAt, 15_000)
      yield* simulator.resume(0)
      yield* waitFor(observed, "online", 15_000)
    })))

  it.live("a refused connection ends in error with a reason; a bad path too", () =>
    live(Effect.gen(function*() {
      const closed = yield* startTestSimulator({ cameras: 1 })
      const serving = yield* startTestSimulator({ cameras: 1 })
      yield* closed.refuseAll
      const refused = yield* startPipeline(closed.url(0))
      const badPath = yield* startPipeline(`rtsp://127.0.0.1:${serving.port}/no-such-mount`)
      yield* waitFor(refused, "error", 10_000)
      yield* waitFor(badPath, "error", 10_000)
      assert.match(refused.states.at(-1)!.reason!, /refused/i)
      assert.match(badPath.states.at(-1)!.reason!, /404|not found/i)
    })))

  it.live("an ffmpeg killed by a signal is restarted, with the signal as the reason", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const observed = yield* startPipeline(simulator.url(0))
      yield* waitFor(observed, "online", 5_000)
      const [pid] = yield* ingestFfmpegs(simulator.url(0))
      assert.isDefined(pid)
      const killedAt = Date.now()
      process.kill(pid!, "SIGKILL")
      const stopped = yield* eventually("the run's end reported", Effect.sync(() =>
        observed.states.find((s) => s.at >= killedAt && s.state !== "online")), 5_000)
      assert.strictEqual(stopped.reason, "ffmpeg was killed by SIGKILL")
      yield* eventually("online again", Effect.sync(() =>
        observed.states.some((s) => s.at > stopped.at && s.state === "online") ? true : undefined), 10_000)
    })))

  it.live("interrupting the pipeline kills ffmpeg at once", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const observed = yield* startPipeline(simulator.url(0))
      yield* waitFor(observed, "online", 5_000)
      const [pid] = yield* ffmpegPids.pipe(Effect.map((pids) => pids.filter((p) => p > 0)))
      assert.isDefined(pid)
      const stopped = Date.now()
      yield* Fiber.interrupt(observed.fiber)
      yield* eventually("ffmpeg gone", Effect.map(ffmpegPids, (pids) => pids.includes(pid!) ? undefined : true), 2_000)
      assert.isBelow(Date.now() - stopped, 2_000)
    })))

  it.live("a stop lists the chunk ffmpeg was writing, up to the moment of the stop", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const observed = yield* startPipeline(simulator.url(0))
      yield* waitFor(observed, "online", 5_000)
      const listed: Array<{ readonly sequence: number; readonly durationSeconds: number; readonly endMs: number }> = []
      yield* observed.live.onChunk((chunk) =>
        void listed.push({
          sequence: chunk.sequence,
          durationSeconds: chunk.durationSeconds,
          endMs: chunk.programDateTime.getTime() + chunk.durationSeconds * 1000
        })
      )
      yield* eventually("two more chunks", Effect.sync(() => listed.length >= 2 ? true : undefined), 5_000)
      // Mid-GOP (GOP 1 s): the chunk being written is a fraction of a second long.
      yield* eventually("half a GOP into a chunk", Effect.sync(() =>
        Date.now() - listed.at(-1)!.endMs >= 400 ? true : undefined), 2_000, 10)
      const whole = listed.length
      const stoppedAt = Date.now()
      yield* Fiber.interrupt(observed.fiber)
      assert.strictEqual(listed.length, whole + 1, "the chunk in progress is listed when the pipeline stops")
      const last = listed.at(-1)!
      assert.strictEqual(last.sequence, listed[whole - 1]!.sequence + 1)
      assert.isAbove(last.durationSeconds, 0.2)
      assert.isBelow(last.durationSeconds, 1)
      // It ends at the stop, give or take the clock of the chunk's first frame.
      assert.approximately(last.endMs, stoppedAt, 400)
    })))

  it.live("a stop with a lead ends ffmpeg that long before the camera's next keyframe", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      // GOP 1 s: stopped 0.3 s before a keyframe, the chunk being written is ~0.7 s long.
      const observed = yield* startPipeline(simulator.url(0), { stopLeadMs: () => 300 })
      yield* waitFor(observed, "online", 5_000)
      const listed: Array<{ readonly durationSeconds: number; readonly endMs: number }> = []
      yield* observed.live.onChunk((chunk) =>
        void listed.push({ durationSeconds: chunk.durationSeconds, endMs: chunk.programDateTime.getTime() + chunk.durationSeconds * 1000 })
      )
      yield* eventually("three more chunks", Effect.sync(() => listed.length >= 3 ? true : undefined), 6_000)
      // Right after a keyframe: stopped at once, the last chunk would be a few frames long.
      yield* eventually("just past a keyframe", Effect.sync(() =>
        Date.now() - listed.at(-1)!.endMs <= 150 ? true : undefined), 3_000, 5)
      const whole = listed.length
      const stoppedAt = Date.now()
      yield* Fiber.interrupt(observed.fiber)
      assert.strictEqual(listed.length, whole + 1, "the chunk in progress is listed when the pipeline stops")
      assert.approximately(listed.at(-1)!.durationSeconds, 0.7, 0.15)
      // The stop waited for its moment: about 0.55 s here, never a whole GOP.
      assert.isAbove(Date.now() - stoppedAt, 350)
      assert.isBelow(Date.now() - stoppedAt, 1_500)
    })))

  it.live("a stop waiting for its keyframe ends ffmpeg at once when the lease goes meanwhile", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const leaseLost = yield* Deferred.make<void>()
      // A lead of a whole GOP: the stop would wait about a second for the next keyframe.
      const observed = yield* startPipeline(simulator.url(0), { stopLeadMs: () => 990, stopWaitEnds: Deferred.await(leaseLost) })
      yield* waitFor(observed, "online", 5_000)
      const chunks: Array<number> = []
      yield* observed.live.onChunk((chunk) => void chunks.push(chunk.programDateTime.getTime() + chunk.durationSeconds * 1000))
      yield* eventually("two more chunks", Effect.sync(() => chunks.length >= 2 ? true : undefined), 5_000)
      // Just past a keyframe: the wait would be most of a GOP.
      yield* eventually("just past a keyframe", Effect.sync(() => Date.now() - chunks.at(-1)! <= 100 ? true : undefined), 3_000, 5)
      const [pid] = yield* ingestFfmpegs(simulator.url(0))
      assert.isDefined(pid)
      const stopping = yield* Effect.forkChild(Fiber.interrupt(observed.fiber))
      yield* Effect.sleep("100 millis")
      assert.include(yield* ingestFfmpegs(simulator.url(0)), pid!, "still waiting for its keyframe")
      const lostAt = Date.now()
      yield* Deferred.succeed(leaseLost, undefined)
      yield* Fiber.join(stopping)
      // SIGTERM at once, and ffmpeg's exit: well under the ~0.8 s of wait that was left.
      assert.isBelow(Date.now() - lostAt, 500)
      assert.notInclude(yield* ingestFfmpegs(simulator.url(0)), pid!)
    })))
})
