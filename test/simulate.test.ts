/**
 * `vms simulate` as a user runs it: serves H.264 720p15 cameras over RTSP,
 * answers its fault-control endpoint, and stops on SIGINT with nothing left.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { requireBinary } from "./support/Binaries.ts"
import { processesMentioning, spawnVms } from "./support/NodeProcess.ts"
import { tempDir } from "./support/TestNode.ts"
import { freePort } from "../runtime/net/FreePort.ts"
import { until } from "./support/Eventually.ts"

describe("vms simulate", () => {
  it.live("serves every mount as 1280x720 15 fps H.264 and stops on SIGINT", () =>
    Effect.gen(function*() {
      const ffprobe = requireBinary("ffprobe")
      const dataDir = yield* tempDir("simulate")
      const [port, controlPort] = [yield* freePort, yield* freePort]
      const vms = yield* spawnVms(["simulate", "--cameras", "3", "--port", `${port}`, "--control-port", `${controlPort}`, "--data-dir", dataDir])
      yield* until("the simulator serves", () => vms.output().includes("RTSP camera simulator serving"), 60_000)
      for (const mount of ["cam0", "cam2"]) {
        const probe = execFileSync(ffprobe, [
          "-v", "error", "-rtsp_transport", "tcp", "-timeout", "5000000",
          "-show_entries", "stream=codec_name,width,height,avg_frame_rate", "-of", "json",
          `rtsp://127.0.0.1:${port}/${mount}`
        ], { encoding: "utf8" })
        const stream = JSON.parse(probe).streams[0]
        assert.deepStrictEqual(stream, { codec_name: "h264", width: 1280, height: 720, avg_frame_rate: "15/1" })
      }
      const stats = yield* Effect.promise(() => fetch(`http://127.0.0.1:${controlPort}/stats`).then((r) => r.json()))
      assert.strictEqual((stats as { mounts: ReadonlyArray<unknown> }).mounts.length, 3)

      vms.child.kill("SIGINT")
      assert.strictEqual(yield* vms.exited.pipe(Effect.timeout("5 seconds")), 0, vms.output())
      assert.deepStrictEqual(yield* processesMentioning(dataDir), [])
    }))
})
