import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { pull } from "./testing/FfmpegPull.ts"
import { ffmpegPath } from "./testing/SharedClip.ts"
import { startTestSimulator } from "./testing/TestSimulator.ts"

const Clients = 50
const StreamSeconds = 10.5

describe("Simulator under load", () => {
  it.live(`${Clients} ffmpeg clients on ${Clients} mounts each decode ≥ 10 s of H.264 over TCP at 15 ± 1 fps`, () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: Clients })
      const results = yield* Effect.forEach(
        Array.from({ length: Clients }, (_, i) => i),
        (i) =>
          Effect.sleep(i * 80).pipe(Effect.andThen(pull({
            url: simulator.url(i),
            transport: "tcp",
            seconds: StreamSeconds,
            mode: "decode",
            ffmpegPath,
            socketTimeoutMicros: 10_000_000
          }))),
        { concurrency: "unbounded" }
      )
      const failures = results.flatMap((result, i) => {
        const issues = [
          ...(result.exitCode === 0 ? [] : [`exit ${result.exitCode}`]),
          ...result.problems,
          ...(result.outTimeSeconds >= 10 ? [] : [`decoded only ${result.outTimeSeconds} s`]),
          ...(Math.abs(result.fps - 15) <= 1 ? [] : [`fps ${result.fps.toFixed(2)}`]),
          // Paced in real time: 10 s of stream cannot arrive much faster than 10 s.
          ...(result.wallSeconds >= 9.5 ? [] : [`received in ${result.wallSeconds} s`])
        ]
        return issues.length === 0 ? [] : [`cam${i}: ${issues.join("; ")}`]
      })
      assert.deepStrictEqual(failures, [])
      const stats = yield* simulator.stats
      assert.strictEqual(stats.framesDropped, 0)
      assert.strictEqual(stats.connectionsAccepted, Clients)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))
})
