import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { Sharding } from "effect/cluster"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs/promises"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { CameraStatusChanged, EventBus } from "../runtime/events/EventBus.ts"
import * as Node from "../runtime/Node.ts"
import { ownedShards, shardsPerGroup } from "../runtime/sharding/Shards.ts"
import { eventually, until } from "../test/support/Eventually.ts"
import { testConfig } from "../test/support/TestNode.ts"
import { Camera } from "./Camera.ts"

const node = Layer.unwrap(Effect.map(testConfig(), (config) => Node.layer(config)))

/** Pids of ffmpeg ingest processes reading `url`. */
const ingestPids = (url: string) =>
  Effect.promise(async () => {
    const pids: Array<number> = []
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")
      if (cmdline.includes("seg_%d.ts") && cmdline.split("\0").includes(url)) pids.push(Number(entry))
    }
    return pids
  })

const statusOf = (id: string) => Effect.flatMap(Camera.client, (clientFor) => clientFor(id).GetStatus())

describe("Camera actor", () => {
  it.live("runs its pipeline while enabled, publishes status changes, stops its ffmpeg when disabled", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 2 })
      const sql = yield* SqlClient.SqlClient
      const bus = yield* EventBus
      const events: Array<CameraStatusChanged> = []
      yield* bus.subscribe.pipe(
        Stream.runForEach((event) => Effect.sync(() => {
          if (event._tag === "CameraStatusChanged") events.push(event)
        })),
        Effect.forkScoped
      )
      const url = simulator.url(0)
      yield* sql`INSERT INTO cameras (id, agency_id, name, url) VALUES ('gate-a', 'default', 'Gate A', ${url})`
      const clientFor = yield* Camera.client
      const added = Date.now()
      yield* clientFor("gate-a").Reconcile()
      const online = yield* eventually("gate-a online", Effect.map(statusOf("gate-a"), (s) => s.status === "online" ? s : undefined), 5_000)
      assert.isBelow(Date.now() - added, 5_000)
      assert.strictEqual(online.nodeId, "test-node")
      assert.isNull(online.reason)
      yield* until("events for connecting and online", () =>
        events.some((e) => e.status.cameraId === "gate-a" && e.status.status === "online"))
      assert.deepStrictEqual(events.filter((e) => e.status.cameraId === "gate-a").map((e) => e.status.status), ["connecting", "online"])
      const withRates = yield* eventually("fps and bitrate", Effect.map(statusOf("gate-a"), (s) => s.fps > 10 && s.bitrate > 100_000 ? s : undefined), 8_000)
      assert.approximately(withRates.fps, 15, 3)

      const snapshot = yield* clientFor("gate-a").TakeSnapshot()
      assert.strictEqual(snapshot.jpeg[0], 0xff)
      assert.strictEqual(snapshot.jpeg[1], 0xd8)
      assert.deepStrictEqual([snapshot.width, snapshot.height], [1280, 720])

      const [pid] = yield* ingestPids(url)
      assert.isDefined(pid)
      yield* sql`UPDATE cameras SET enabled = false WHERE id = 'gate-a'`
      const disabledAt = Date.now()
      yield* clientFor("gate-a").Reconcile()
      yield* eventually("ffmpeg gone", Effect.map(ingestPids(url), (pids) => pids.length === 0 ? true : undefined), 2_000)
      assert.isBelow(Date.now() - disabledAt, 2_000)
      assert.strictEqual((yield* statusOf("gate-a")).status, "disabled")
      const snapshotError = yield* Effect.flip(clientFor("gate-a").TakeSnapshot())
      assert.strictEqual(snapshotError._tag, "SnapshotUnavailable")
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("restarts with a new URL, and stops when its row is deleted", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 2 })
      const sql = yield* SqlClient.SqlClient
      const clientFor = yield* Camera.client
      yield* sql`INSERT INTO cameras (id, agency_id, name, url) VALUES ('gate-b', 'default', 'Gate B', ${simulator.url(0)})`
      yield* clientFor("gate-b").Reconcile()
      yield* eventually("online on cam0", Effect.map(ingestPids(simulator.url(0)), (p) => p.length === 1 ? true : undefined), 5_000)
      yield* sql`UPDATE cameras SET url = ${simulator.url(1)} WHERE id = 'gate-b'`
      yield* clientFor("gate-b").Reconcile()
      yield* eventually("moved to cam1", Effect.map(
        Effect.all([ingestPids(simulator.url(0)), ingestPids(simulator.url(1))]),
        ([old, next]) => old.length === 0 && next.length === 1 ? true : undefined
      ), 5_000)
      yield* eventually("online again", Effect.map(statusOf("gate-b"), (s) => s.status === "online" ? s : undefined), 5_000)
      yield* sql`DELETE FROM cameras WHERE id = 'gate-b'`
      yield* clientFor("gate-b").Reconcile()
      yield* eventually("ffmpeg gone", Effect.map(ingestPids(simulator.url(1)), (p) => p.length === 0 ? true : undefined), 2_000)
      const error = yield* Effect.flip(statusOf("gate-b"))
      assert.strictEqual(error._tag, "CameraNotFound")
    }).pipe(Effect.scoped, Effect.provide(node)))

  it.live("the fleet keeper starts enabled cameras by itself, and node shutdown leaves no ffmpeg", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 3 })
      const config = yield* testConfig()
      const urls = [0, 1, 2].map((i) => simulator.url(i))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // Rows written behind the API's back: nobody reconciles them, the fleet keeper finds them.
        yield* sql`INSERT INTO cameras (id, agency_id, name, url, enabled) VALUES
                   ('k0', 'default', 'K0', ${urls[0]!}, true), ('k1', 'default', 'K1', ${urls[1]!}, true),
                   ('k2', 'default', 'K2', ${urls[2]!}, false)`
      }).pipe(Effect.provide(Node.layer(config)))
      const fiber = yield* Effect.gen(function*() {
        yield* eventually("k0 and k1 online", Effect.map(
          Effect.all([statusOf("k0"), statusOf("k1")]),
          (all) => all.every((s) => s.status === "online") ? true : undefined
        ), 10_000)
        assert.strictEqual((yield* ingestPids(urls[2]!)).length, 0)
        assert.strictEqual((yield* statusOf("k2")).status, "disabled")
        const sharding = yield* Sharding.Sharding
        assert.strictEqual(ownedShards(sharding), shardsPerGroup)
      }).pipe(Effect.provide(Node.layer(config)), Effect.forkChild)
      yield* Fiber.join(fiber)
      // The node's layer is closed: every pipeline's process group was killed.
      const left = yield* Effect.map(Effect.all(urls.map(ingestPids)), (all) => all.flat())
      assert.deepStrictEqual(left, [])
    }).pipe(Effect.scoped))
})
