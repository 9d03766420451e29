/**
 * Three real nodes on loopback, real NATS and Postgres, the simulator:
 * cameras spread over the nodes; SIGKILL of the node owning the most takes
 * its ffmpegs with it and its cameras come online on the survivors, while a
 * scan every 100 ms never sees two ffmpegs pulling one camera.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import {
  addCamera,
  allOnline,
  pulledTwice,
  type FfmpegProcess,
  ingestFfmpegs,
  startNode,
  statuses
} from "./support/Cluster.ts"
import { eventually } from "./support/Eventually.ts"
import { natsUrl, testNamespace } from "./support/Nats.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"

const cameraCount = 30

const text = (url: string) =>
  Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, body: await r.text() })))

describe("cluster failover", () => {
  it.live("spreads cameras over 3 nodes; SIGKILL of the busiest moves its cameras with no second owner", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: cameraCount })
      const prefix = `rtsp://127.0.0.1:${simulator.port}/`
      const cluster = { natsUrl: yield* natsUrl, databaseUrl: yield* testDatabaseUrl, namespace: testNamespace() }
      const nodes = yield* Effect.all(["n1", "n2", "n3"].map((id) => startNode(cluster, id)), { concurrency: "unbounded" })
      const cameraIds = Array.from({ length: cameraCount }, (_, i) => `cam${i}`)
      yield* Effect.forEach(cameraIds, (id, i) => addCamera(nodes[i % 3]!, id, `${prefix}cam${i}`), { concurrency: 4 })

      const before = yield* allOnline(nodes[0]!, cameraIds, ["n1", "n2", "n3"], 40_000)
      const owned = new Map<string, number>()
      for (const s of before) owned.set(s.nodeId, (owned.get(s.nodeId) ?? 0) + 1)
      assert.strictEqual(owned.size, 3, `every node owns cameras: ${JSON.stringify([...owned])}`)
      // Every node answers for every camera, wherever it runs.
      for (const node of nodes) {
        const seen = yield* statuses(node, cameraIds)
        assert.deepStrictEqual(seen?.map((s) => s.nodeId), before.map((s) => s.nodeId))
      }
      assert.deepStrictEqual(yield* pulledTwice(prefix), [])
      // Every camera's live playlist, and a segment of it, through every node (non-owners forward to the owner).
      yield* Effect.forEach(nodes, (node) =>
        Effect.forEach(cameraIds, (id) =>
          Effect.gen(function*() {
            const playlist = yield* text(`${node.baseUrl}/live/${id}/index.m3u8`)
            assert.strictEqual(playlist.status, 200, `${id} via ${node.id}: ${playlist.body}`)
            assert.match(playlist.body, /^#EXTM3U/)
            const segment = playlist.body.split("\n").find((line) => line.startsWith("seg_"))!
            const bytes = yield* text(`${node.baseUrl}/live/${id}/${segment}`)
            assert.strictEqual(bytes.status, 200, `${id}/${segment} via ${node.id}`)
            assert.strictEqual(bytes.body.charCodeAt(0), 0x47, "an MPEG-TS packet")
          }), { concurrency: 6 }), { discard: true })

      // Scan for double pulls every 100 ms from now on.
      const violations: Array<string> = []
      const scanner = yield* Effect.gen(function*() {
        while (true) {
          const doubles = yield* pulledTwice(prefix)
          if (doubles.length > 0) violations.push(...doubles)
          yield* Effect.sleep("100 millis")
        }
      }).pipe(Effect.forkScoped)

      const [busiestId] = [...owned].sort((a, b) => b[1] - a[1])[0]!
      const busiest = nodes.find((n) => n.id === busiestId)!
      const survivors = nodes.filter((n) => n !== busiest)
      const itsFfmpegs = (yield* ingestFfmpegs(prefix)).filter((f: FfmpegProcess) => f.parent === busiest.pid)
      assert.isAbove(itsFfmpegs.length, 0)
      const killedAt = Date.now()
      process.kill(busiest.pid, "SIGKILL")

      // Its ffmpegs die with it (an orphan would be a second owner).
      yield* eventually("the killed node's ffmpegs are gone", Effect.map(ingestFfmpegs(prefix), (all) => {
        const pids = new Set(all.map((f) => f.pid))
        return itsFfmpegs.every((f) => !pids.has(f.pid)) ? true : undefined
      }), 5_000, 50)
      const after = yield* allOnline(survivors[0]!, cameraIds, survivors.map((n) => n.id), 20_000)
      const movedInMs = Date.now() - killedAt
      assert.isTrue(after.every((s) => s.nodeId !== busiestId))
      yield* Fiber.interrupt(scanner)
      // The survivors see two nodes and own all 300 shards between them.
      const gauges = yield* eventually("survivor metrics settle", Effect.map(
        Effect.forEach(survivors, (node) => text(`${node.baseUrl}/metrics`)),
        (pages) => {
          const read = (page: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(page)?.[1])
          const nodesSeen = pages.map((p) => read(p.body, "vms_cluster_nodes"))
          const owned = pages.reduce((sum, p) => sum + read(p.body, "vms_shards_owned"), 0)
          const burials = pages.reduce((sum, p) => sum + read(p.body, "vms_cluster_dead_runners_total"), 0)
          return nodesSeen.every((n) => n === 2) && owned === 300 ? { nodesSeen, owned, burials } : undefined
        }
      ), 10_000, 200)
      assert.strictEqual(gauges.owned, 300)
      // Its death was proven (no NATS connection, its HTTP port refused) and its shards freed at
      // once, by one survivor or both, instead of waiting for its leases to lapse.
      assert.isAtLeast(gauges.burials, 1, "a survivor proved the killed node dead")
      assert.deepStrictEqual(violations, [], "two ffmpegs pulled one camera")
      // Wall-clock bound for the test only; the failover figure is the benchmark's (vms bench failover).
      assert.isBelow(movedInMs, 15_000)
    }).pipe(Effect.scoped), 120_000)
})
