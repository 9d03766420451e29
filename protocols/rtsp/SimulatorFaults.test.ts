import * as Net from "node:net"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { until } from "../../test/support/Eventually.ts"
import { pull, type PullOptions, type PullProgress } from "./testing/FfmpegPull.ts"
import { connectRaw, playTcp, RawRtspClient, send } from "./testing/RawRtspClient.ts"
import { ffmpegPath } from "./testing/SharedClip.ts"
import { startTestSimulator } from "./testing/TestSimulator.ts"

const live = <A, E>(effect: Effect.Effect<A, E, any>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeServices.layer)) as Effect.Effect<A, E>

/** An open-ended ffmpeg pull running in the background, with its latest progress. */
const startPull = (options: Omit<PullOptions, "onProgress" | "ffmpegPath">) =>
  Effect.gen(function*() {
    let progress: PullProgress = { frames: 0, outTimeSeconds: 0, atMs: 0 }
    const fiber = yield* Effect.forkScoped(pull({ ...options, ffmpegPath, onProgress: (p) => progress = p }))
    return { fiber, frames: () => progress.frames }
  })

const connectOutcome = (port: number) =>
  Effect.promise(() =>
    new Promise<string>((resolve) => {
      const socket = Net.connect({ port, host: "127.0.0.1" }, () => {
        socket.destroy()
        resolve("connected")
      })
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)))
    })
  )

const checkClean = (seconds: number, url: string) =>
  pull({ url, transport: "tcp", seconds, mode: "decode", ffmpegPath, socketTimeoutMicros: 5_000_000 }).pipe(
    Effect.tap((result) =>
      Effect.sync(() => {
        assert.strictEqual(result.exitCode, 0, result.stderr)
        assert.deepStrictEqual(result.problems, [])
        assert.isAtLeast(result.outTimeSeconds, seconds - 0.5)
      })
    )
  )

describe("Simulator faults", () => {
  it.live("drop closes the mount's connections (ffmpeg ends); reconnecting works", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 3 })
      const dropped = yield* startPull({ url: simulator.url(1), transport: "tcp", mode: "copy" })
      const other = yield* connectRaw(simulator.port)
      yield* playTcp(other, simulator.url(2))
      yield* until("ffmpeg receiving", () => dropped.frames() >= 15, 15_000)
      assert.strictEqual(yield* simulator.drop(1), 1)
      const result = yield* Fiber.join(dropped.fiber).pipe(Effect.timeout("10 seconds"))
      assert.isAtLeast(result.frames, 15)
      assert.strictEqual((yield* simulator.stats).mounts[1]!.connections, 0)
      assert.isFalse(other.closed, "other mounts are untouched")
      yield* checkClean(3, simulator.url(1))
    })))

  it.live("hang keeps sockets open but sends nothing and answers nothing; resume restarts at a keyframe", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 3 })
      const watcher = yield* connectRaw(simulator.port)
      yield* playTcp(watcher, simulator.url(2))
      const timedOut = yield* startPull({
        url: simulator.url(2),
        transport: "tcp",
        mode: "copy",
        socketTimeoutMicros: 1_000_000
      })
      yield* until("both receiving", () => timedOut.frames() >= 15 && watcher.packets.length > 50, 15_000)
      yield* simulator.hang(2)
      const hungAt = Date.now()
      // ffmpeg's -timeout notices the silence and gives up; the server never closes the socket.
      const result = yield* Fiber.join(timedOut.fiber).pipe(Effect.timeout("20 seconds"))
      assert.isAtLeast(result.frames, 15)
      assert.isFalse(watcher.closed)
      assert.isBelow(watcher.lastDataAtMs, hungAt + 300, "no media after hang")
      const asker = yield* connectRaw(simulator.port)
      const unanswered = yield* send(asker, "DESCRIBE", simulator.url(2)).pipe(Effect.timeoutOption("1500 millis"))
      assert.isTrue(unanswered._tag === "None", "DESCRIBE is not answered while hung")
      assert.isFalse(asker.closed)
      const other = yield* connectRaw(simulator.port)
      assert.strictEqual((yield* send(other, "DESCRIBE", simulator.url(1))).status, 200, "other mounts answer")

      yield* simulator.resume(2)
      const resumedAt = Date.now()
      yield* until("media again", () => watcher.lastDataAtMs > resumedAt, 5000)
      const firstAfter = watcher.packets.find((p) => p.atMs > resumedAt && p.channel === 0)!
      assert.strictEqual(firstAfter.payload[12]! & 0x1f, 7, "resumes with the SPS of a keyframe")
      yield* checkClean(3, simulator.url(2))
    })))

  it.live("refuse answers new clients 503 and disconnects them; playing sessions continue; resume", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 4 })
      const playing = yield* connectRaw(simulator.port)
      const { session } = yield* playTcp(playing, simulator.url(3))
      yield* simulator.refuse(3)
      const refused = yield* connectRaw(simulator.port)
      assert.strictEqual((yield* send(refused, "DESCRIBE", simulator.url(3))).status, 503)
      yield* until("refused connection closed", () => refused.closed)
      const refusedPull = yield* pull({ url: simulator.url(3), transport: "tcp", seconds: 2, mode: "copy", ffmpegPath })
      assert.notStrictEqual(refusedPull.exitCode, 0)
      assert.strictEqual(refusedPull.frames, 0)
      const before = playing.packets.length
      yield* until("the playing session still streams", () => playing.packets.length > before + 20)
      assert.strictEqual((yield* send(playing, "GET_PARAMETER", simulator.url(3), [["Session", session]])).status, 200)
      yield* simulator.resume(3)
      yield* checkClean(2, simulator.url(3))
    })))

  it.live("refuseAll closes the listener (ECONNREFUSED) and resumeAll reopens it on the same port", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 2 })
      const playing = yield* connectRaw(simulator.port)
      yield* playTcp(playing, simulator.url(0))
      yield* simulator.refuseAll
      assert.strictEqual(yield* connectOutcome(simulator.port), "ECONNREFUSED")
      assert.isFalse((yield* simulator.stats).listening)
      const before = playing.packets.length
      yield* until("established connections keep streaming", () => playing.packets.length > before + 20)
      yield* simulator.resumeAll
      assert.strictEqual(yield* connectOutcome(simulator.port), "connected")
      yield* checkClean(2, simulator.url(1))
    })))

  it.live("the HTTP fault-control endpoint drives faults and reports stats", () =>
    live(Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 5, controlPort: 0 })
      const control = `http://127.0.0.1:${simulator.controlPort}`
      const post = (path: string) => Effect.promise(() => fetch(`${control}${path}`, { method: "POST" }))
      const client = yield* connectRaw(simulator.port)
      yield* playTcp(client, simulator.url(4))

      const hang = yield* post("/faults/cam4/hang")
      assert.strictEqual(hang.status, 200)
      assert.deepStrictEqual(yield* Effect.promise(() => hang.json()), { mount: "cam4", action: "hang", mode: "hang" })
      const stats = yield* Effect.promise(() =>
        fetch(`${control}/stats`).then((r) => r.json() as Promise<{ mounts: Array<{ mode: string; playing: number }> }>)
      )
      assert.strictEqual(stats.mounts[4]!.mode, "hang")
      assert.strictEqual(stats.mounts[4]!.playing, 1)
      assert.strictEqual((yield* post("/faults/4/resume")).status, 200)
      assert.strictEqual((yield* simulator.stats).mounts[4]!.mode, "normal")
      const drop = yield* post("/faults/cam4/drop")
      assert.deepStrictEqual(yield* Effect.promise(() => drop.json()), { mount: "cam4", action: "drop", dropped: 1 })
      yield* until("client dropped", () => client.closed)
      assert.strictEqual((yield* post("/faults/cam9/drop")).status, 404)
      assert.strictEqual((yield* post("/faults/cam1/explode")).status, 400)
      assert.strictEqual((yield* post("/listener/refuse")).status, 200)
      assert.strictEqual(yield* connectOutcome(simulator.port), "ECONNREFUSED")
      assert.strictEqual((yield* post("/listener/resume")).status, 200)
      const again = yield* Effect.promise(() => RawRtspClient.connect(simulator.port))
      assert.strictEqual((yield* Effect.promise(() => again.request("OPTIONS", simulator.url(0)))).status, 200)
      again.close()
    })))
})
