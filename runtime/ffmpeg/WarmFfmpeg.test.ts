import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { startTestSimulator } from "../../protocols/rtsp/testing/TestSimulator.ts"
import { ffmpegPath } from "../../protocols/rtsp/testing/SharedClip.ts"
import { requireBinary } from "../../test/support/Binaries.ts"
import { eventually } from "../../test/support/Eventually.ts"
import { processesMentioning } from "../../test/support/NodeProcess.ts"
import { tempDir } from "../../test/support/TestNode.ts"
import * as LiveStream from "../live/LiveStream.ts"
import { CameraMetrics } from "../metrics/CameraMetrics.ts"
import { Metrics } from "../metrics/Metrics.ts"
import { defaultBackoff } from "./Backoff.ts"
import * as Pipeline from "./Pipeline.ts"
import { SpawnPacer } from "./SpawnPacer.ts"
import { WarmFfmpeg, type WarmFfmpegOptions } from "./WarmFfmpeg.ts"

/** A pool in its own scope (closed by the test when it wants), with what it runs on. */
const pool = (options: Partial<WarmFfmpegOptions> & { readonly label: string }) =>
  Effect.gen(function*() {
    // The shim is built with the machine's compiler.
    requireBinary("cc")
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      WarmFfmpeg.make({ ffmpegPath, niceness: 10, size: 2, shimDir: path.join(options.label, "bin"), refillAfterMs: 0, spacingMs: 20, ...options }).pipe(
        Layer.provideMerge(Layer.mergeAll(NodeServices.layer, SpawnPacer.make("1 millis"), CameraMetrics.layer)),
        Layer.provideMerge(Metrics.layer)
      ),
      scope
    )
    return { scope, context, warm: Context.get(context, WarmFfmpeg) }
  })

const idleCount = (warm: WarmFfmpeg["Service"], count: number) =>
  eventually(`${count} waiting`, Effect.map(warm.idle, (n) => n === count ? true : undefined), 10_000)

const startsOf = (context: Context.Context<Metrics>, kind: "warm" | "cold") =>
  Effect.promise(async () => {
    const text = await Context.get(context, Metrics).registry.metrics()
    return Number(new RegExp(`vms_ffmpeg_starts_total\\{start="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
  })

describe("warm ffmpeg starts", () => {
  it.live("a waiting ffmpeg runs the arguments it is sent, in the directory sent, and shows them as its command line", () =>
    Effect.gen(function*() {
      const label = yield* tempDir("warm")
      const { context, warm } = yield* pool({ label })
      yield* idleCount(warm, 2)
      // Waiting, each mentions the node's label (process scans by data dir find them) and nothing else.
      const waiting = yield* processesMentioning(`vms-warm-start ${label}`)
      assert.strictEqual(waiting.length, 2, waiting.join("\n"))

      const runDir = path.join(label, "run")
      fs.mkdirSync(runDir)
      const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
        "-c:v", "mpeg2video", "-f", "mpegts", "out.ts"]
      const handle = yield* Effect.scoped(Effect.gen(function*() {
        const started = yield* warm.start(runDir, args)
        assert.isTrue(Option.isSome(started))
        const handle = Option.getOrThrow(started)
        const pid = Number(handle.pid)
        const cmdline = yield* eventually("its command line shows the run", Effect.sync(() => {
          const text = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
          return text.includes("testsrc") ? text : undefined
        }), 5_000)
        assert.deepStrictEqual(cmdline.split("\0").filter((part) => part !== ""), [ffmpegPath, ...args])
        assert.strictEqual(fs.readlinkSync(`/proc/${pid}/cwd`), runDir)
        assert.strictEqual(Number(yield* handle.exitCode), 0)
        return handle
      }))
      assert.isAbove(fs.statSync(path.join(runDir, "out.ts")).size, 1_000)
      assert.isFalse(yield* handle.isRunning.pipe(Effect.orElseSucceed(() => false)))
      assert.strictEqual(yield* startsOf(context, "warm"), 1)
      // The pool fills up again.
      yield* idleCount(warm, 2)
    }).pipe(Effect.scoped), 30_000)

  it.live("closing the pool ends its waiting ffmpegs; an empty pool answers none (start cold)", () =>
    Effect.gen(function*() {
      const label = yield* tempDir("warm")
      const { context, scope, warm } = yield* pool({ label, size: 3 })
      yield* idleCount(warm, 3)
      yield* Scope.close(scope, Exit.void)
      yield* eventually("no waiting ffmpeg left", Effect.map(processesMentioning(`vms-warm-start ${label}`), (left) =>
        left.length === 0 ? true : undefined), 5_000)
      const none = yield* Effect.scoped(warm.start(label, ["-version"]))
      assert.isTrue(Option.isNone(none))
      assert.strictEqual(yield* startsOf(context, "cold"), 1)
    }).pipe(Effect.scoped), 30_000)

  it.live("a program that does not wait under the shim (statically linked) turns warm starts off", () =>
    Effect.gen(function*() {
      const label = yield* tempDir("warm")
      // Debian's ldconfig is static-pie: LD_PRELOAD does nothing, it runs its placeholder arguments and exits.
      const { warm } = yield* pool({ label, ffmpegPath: "/sbin/ldconfig" })
      yield* eventually("warm starts off", Effect.map(warm.enabled, (on) => on ? undefined : true), 10_000)
      assert.strictEqual(yield* warm.idle, 0)
      assert.isTrue(Option.isNone(yield* Effect.scoped(warm.start(label, ["-p"]))))
    }).pipe(Effect.scoped), 30_000)

  it.live("size 0: no process is started, every start is cold", () =>
    Effect.gen(function*() {
      const label = yield* tempDir("warm")
      const { warm } = yield* pool({ label, size: 0 })
      assert.isFalse(yield* warm.enabled)
      assert.deepStrictEqual(yield* processesMentioning(`vms-warm-start ${label}`), [])
    }).pipe(Effect.scoped), 30_000)

  it.live("a camera's ingest takes a waiting ffmpeg and goes online with it", () =>
    Effect.gen(function*() {
      const label = yield* tempDir("warm")
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const { context, warm } = yield* pool({ label, size: 1, refillAfterMs: 60_000, firstFillAfterMs: 0 })
      yield* idleCount(warm, 1)
      const [waitingPid] = (yield* processesMentioning(`vms-warm-start ${label}`)).map((line) => Number(line.split(":")[0]))
      const live = yield* LiveStream.make({ dir: path.join(label, "live"), windowSize: 6, graceSize: 6 })
      const states: Array<Pipeline.PipelineState> = []
      yield* Pipeline.run({
        cameraId: "cam",
        url: simulator.url(0),
        ffmpegPath,
        live,
        backoff: defaultBackoff,
        stallMs: 10_000,
        failuresBeforeError: 2,
        chunkSeconds: 1,
        socketTimeoutMs: 5_000
      }, {
        state: (state) => Effect.sync(() => void states.push(state)),
        rates: () => Effect.void,
        streamInfo: () => Effect.void
      }).pipe(Effect.provideContext(context), Effect.forkScoped)
      yield* eventually("online", Effect.sync(() => states.includes("online") ? true : undefined), 10_000)
      // The process that pulls the camera is the one that was waiting.
      const cmdline = fs.readFileSync(`/proc/${waitingPid}/cmdline`, "utf8")
      assert.include(cmdline, `\0${simulator.url(0)}\0`)
      assert.strictEqual(yield* startsOf(context, "warm"), 1)
      assert.strictEqual(yield* warm.idle, 0)
    }).pipe(Effect.scoped), 30_000)
})
