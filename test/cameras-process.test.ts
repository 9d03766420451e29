/**
 * Cameras in a real `vms start` process: `--demo N` brings N live cameras
 * and is idempotent across restarts; SIGINT stops every ffmpeg; a SIGKILLed
 * node leaves no ffmpeg behind either (the kernel kills them with it).
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { eventually } from "./support/Eventually.ts"
import { processesMentioning, spawnVms } from "./support/NodeProcess.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"
import { tempDir } from "./support/TestNode.ts"

const getJson = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, json: (await response.json()) as Record<string, any> }
  })

const ready = (base: string) =>
  eventually("node ready", Effect.map(
    Effect.promise(() => fetch(`${base}/health/ready`).then((r) => r.status).catch(() => 0)),
    (status) => status === 200 ? true : undefined
  ), 30_000)

/** ffmpeg ingest processes working in a directory under `dataDir` (their cwd is the camera's live dir). */
const ffmpegsUnder = (dataDir: string) =>
  Effect.promise(async () => {
    const fs = await import("node:fs/promises")
    let count = 0
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")
      const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => "")
      if (cmdline.includes("seg_%d.ts") && cwd.startsWith(dataDir)) count++
    }
    return count
  })

describe("cameras in a node process", () => {
  it.live("--demo 2 registers two live cameras once; SIGINT leaves no ffmpeg", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("demo")
      const env = { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0", VMS_DATABASE_URL: yield* testDatabaseUrl }
      for (const run of [1, 2]) {
        const vms = yield* spawnVms(["start", "--demo", "2"], env)
        const base = yield* vms.httpUrl.pipe(Effect.timeout("30 seconds"))
        yield* ready(base)
        yield* eventually("demo cameras online", Effect.map(
          Effect.all([getJson(`${base}/api/v1/cameras/demo-0/status`), getJson(`${base}/api/v1/cameras/demo-1/status`)]),
          (all) => all.every((r) => r.json.status === "online") ? true : undefined
        ), 15_000)
        assert.strictEqual(yield* ffmpegsUnder(dataDir), 2)
        const list = yield* getJson(`${base}/api/v1/cameras`)
        assert.deepStrictEqual(list.json.items.map((c: { id: string }) => c.id), ["demo-0", "demo-1"], `run ${run}`)
        assert.match(vms.output(), /"message":"demo cameras ready"/)
        assert.include(vms.output(), `${base}/player/demo-0`)
        vms.child.kill("SIGINT")
        assert.strictEqual(yield* vms.exited.pipe(Effect.timeout("10 seconds")), 0)
        assert.strictEqual(yield* ffmpegsUnder(dataDir), 0, vms.output())
      }
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))

  it.live("a SIGKILLed node takes its ffmpegs with it", () =>
    Effect.gen(function*() {
      // The simulator lives in the test, so the source does not vanish with the node.
      const simulator = yield* startTestSimulator({ cameras: 1 })
      const dataDir = yield* tempDir("kill")
      const vms = yield* spawnVms(["start"], { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0", VMS_DATABASE_URL: yield* testDatabaseUrl })
      const base = yield* vms.httpUrl.pipe(Effect.timeout("30 seconds"))
      yield* ready(base)
      const created = yield* Effect.promise(() =>
        fetch(`${base}/api/v1/cameras`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: "orphan-check", name: "Orphan check", url: simulator.url(0) })
        }))
      assert.strictEqual(created.status, 201)
      yield* eventually("online", Effect.map(getJson(`${base}/api/v1/cameras/orphan-check/status`),
        (r) => r.json.status === "online" ? true : undefined), 10_000)
      const url = simulator.url(0)
      assert.strictEqual((yield* processesMentioning(url)).length, 1)
      vms.child.kill("SIGKILL")
      yield* vms.exited
      yield* eventually("ffmpeg gone", Effect.map(processesMentioning(url), (p) => p.length === 0 ? true : undefined), 2_000)
    }).pipe(Effect.scoped))
})
