/**
 * Partition and freeze, with three real nodes: one node reaches NATS through
 * a TCP proxy the test cuts, or its whole process group is stopped and
 * resumed. Either way it must stop its pipelines before a survivor starts
 * one for the same camera (a scan every 100 ms never sees two running
 * ffmpegs on one camera, or after a freeze never for more than a second),
 * and its cameras come back on the survivors.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import {
  addCamera,
  allOnline,
  type ClusterNode,
  pulledTwice,
  ingestFfmpegs,
  json,
  startNode,
  statusEvents
} from "./support/Cluster.ts"
import { eventually } from "./support/Eventually.ts"
import { natsProxy, natsUrl, testNamespace } from "./support/Nats.ts"
import { PgClient } from "@effect/sql-pg"
import { Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { testDatabaseUrl } from "./support/TestDatabase.ts"

const cameraCount = 12

const setup = (env: Record<string, string> = {}) => Effect.gen(function*() {
  const simulator = yield* startTestSimulator({ cameras: cameraCount })
  const prefix = `rtsp://127.0.0.1:${simulator.port}/`
  const nats = yield* natsUrl
  const proxy = yield* natsProxy(nats)
  const cluster = { natsUrl: nats, databaseUrl: yield* testDatabaseUrl, namespace: testNamespace() }
  const nodes = yield* Effect.all([
    startNode(cluster, "p1", env),
    startNode(cluster, "p2", env),
    startNode({ ...cluster, natsUrl: proxy.url }, "p3", env)
  ], { concurrency: "unbounded" })
  const cameraIds = Array.from({ length: cameraCount }, (_, i) => `cam${i}`)
  yield* Effect.forEach(cameraIds, (id, i) => addCamera(nodes[0]!, id, `${prefix}cam${i}`), { concurrency: 4 })
  const before = yield* allOnline(nodes[0]!, cameraIds, ["p1", "p2", "p3"], 40_000)
  const isolated = nodes[2]!
  const itsCameras = before.filter((s) => s.nodeId === isolated.id).map((s) => s.cameraId)
  assert.isAbove(itsCameras.length, 0, "the isolated node owns cameras")
  return { prefix, proxy, nodes, cameraIds, isolated, itsCameras, databaseUrl: cluster.databaseUrl }
})

/** Records sources seen pulled twice, and for how long each overlap lasted. */
const scanOverlaps = (prefix: string) =>
  Effect.gen(function*() {
    const overlaps = new Map<string, { readonly from: number; to: number }>()
    const fiber = yield* Effect.gen(function*() {
      while (true) {
        const now = Date.now()
        for (const source of yield* pulledTwice(prefix)) {
          const seen = overlaps.get(source)
          if (seen === undefined || now - seen.to > 500) overlaps.set(source, { from: now, to: now })
          else seen.to = now
        }
        yield* Effect.sleep("100 millis")
      }
    }).pipe(Effect.forkScoped)
    return { overlaps, stop: Fiber.interrupt(fiber) }
  })

interface IndexRow {
  readonly cameraId: string
  readonly nodeId: string
  readonly startMs: number
  readonly endMs: number
}

/** The recording index as it stands. */
const indexRows = (databaseUrl: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ camera_id: string; node_id: string; start_time: Date; end_time: Date }>`
      SELECT camera_id, node_id, start_time, end_time FROM recordings`
    return rows.map((r): IndexRow => ({
      cameraId: r.camera_id,
      nodeId: r.node_id,
      startMs: new Date(r.start_time).getTime(),
      endMs: new Date(r.end_time).getTime()
    }))
  }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 1 })), Effect.orDie)

const survivorsOf = (nodes: ReadonlyArray<ClusterNode>, isolated: ClusterNode) => nodes.filter((n) => n !== isolated)

/**
 * Runners the survivors declared dead before their leases lapsed: none may be, for a node that is
 * cut off or frozen is alive (its HTTP port still accepts), and only a lease may hand its shards on.
 */
const burials = (survivors: ReadonlyArray<ClusterNode>) =>
  Effect.map(
    Effect.forEach(survivors, (node) => Effect.promise(() => fetch(`${node.baseUrl}/metrics`).then((r) => r.text()))),
    (pages) => pages.reduce((sum, page) => sum + Number(/^vms_cluster_dead_runners_total (\S+)$/m.exec(page)?.[1] ?? NaN), 0)
  )

describe("cluster partition and freeze", () => {
  it.live("a node cut off from NATS stops its pipelines before the survivors start theirs", () =>
    Effect.gen(function*() {
      const { prefix, proxy, nodes, cameraIds, isolated } = yield* setup()
      const scan = yield* scanOverlaps(prefix)
      yield* proxy.cut
      const survivors = survivorsOf(nodes, isolated)
      yield* allOnline(survivors[0]!, cameraIds, survivors.map((n) => n.id), 20_000)
      // The cut-off node runs no pipeline any more.
      yield* eventually("the isolated node's ffmpegs are gone", Effect.map(ingestFfmpegs(prefix), (all) =>
        all.some((f) => f.parent === isolated.pid) ? undefined : true), 5_000, 100)
      yield* scan.stop
      assert.deepStrictEqual([...scan.overlaps.keys()], [], "two ffmpegs pulled one camera")
      assert.strictEqual(yield* burials(survivors), 0, "the cut-off node was declared dead")
    }).pipe(Effect.scoped), 120_000)

  it.live("a node frozen past its leases kills its stale pipelines at once when resumed and writes nothing for them", () =>
    Effect.gen(function*() {
      const { prefix, nodes, cameraIds, isolated, itsCameras, databaseUrl } = yield* setup({ VMS_RECORDING_SEGMENT_SECONDS: "4" })
      const survivors = survivorsOf(nodes, isolated)
      yield* Effect.forEach(cameraIds, (id) =>
        json(`${nodes[0]!.baseUrl}/api/v1/cameras/${id}/recording`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ enabled: true })
        }).pipe(Effect.tap((r) => Effect.sync(() => assert.strictEqual(r.status, 200)))), { concurrency: 4 })
      const rows = indexRows(databaseUrl)
      // Recording on every node, the isolated one included, before the freeze.
      yield* eventually("every camera has a recorded segment", Effect.map(rows, (all) =>
        new Set(all.map((r) => r.cameraId)).size === cameraIds.length ? true : undefined), 30_000, 250)
      const events = yield* statusEvents(survivors[0]!)
      const scan = yield* scanOverlaps(prefix)
      const frozenFfmpegs = (yield* ingestFfmpegs(prefix)).filter((f) => f.parent === isolated.pid).map((f) => f.pid)
      // The whole process group, ffmpegs included, as a frozen VM would be.
      const frozenAt = Date.now()
      for (const pid of [isolated.pid, ...frozenFfmpegs]) process.kill(pid, "SIGSTOP")
      yield* allOnline(survivors[0]!, cameraIds, survivors.map((n) => n.id), 20_000)
      const resumedAt = Date.now()
      for (const pid of [isolated.pid, ...frozenFfmpegs]) process.kill(pid, "SIGCONT")
      yield* eventually("the resumed node's stale ffmpegs are gone", Effect.map(ingestFfmpegs(prefix), (all) =>
        all.some((f) => frozenFfmpegs.includes(f.pid)) ? undefined : true), 5_000, 50)
      // The survivors keep the cameras.
      yield* allOnline(survivors[0]!, cameraIds, survivors.map((n) => n.id), 10_000)
      yield* scan.stop
      for (const [source, { from, to }] of scan.overlaps) {
        assert.isAtMost(to - from, 1_000, `${source} was pulled twice for ${to - from} ms after the resume`)
      }
      // What it recorded before the freeze is uploaded and indexed (its spool empties), and nothing after it.
      yield* eventually("the resumed node's spool is empty", Effect.promise(() =>
        fs.readdir(path.join(isolated.dataDir, "spool"), { recursive: true }).then((files) =>
          files.some((f) => f.endsWith(".ts")) ? undefined : true).catch(() => true)), 15_000, 250)
      const recorded = yield* rows
      for (const cameraId of itsCameras) {
        const mine = recorded.filter((r) => r.cameraId === cameraId)
        for (const row of mine.filter((r) => r.nodeId === isolated.id)) {
          assert.isAtMost(row.endMs, frozenAt + 250, `${cameraId}: the resumed node indexed recording from after its freeze`)
        }
        const sorted = [...mine].sort((a, b) => a.startMs - b.startMs)
        for (let i = 1; i < sorted.length; i++) {
          assert.isAtMost(sorted[i - 1]!.endMs, sorted[i]!.startMs, `${cameraId}: overlapping rows`)
        }
      }
      assert.strictEqual(yield* burials(survivors), 0, "the frozen node was declared dead")
      // No status event from the resumed node after it resumed.
      const late = events.filter((e) => e.nodeId === isolated.id && e.receivedAt >= resumedAt)
      assert.deepStrictEqual(late.map((e) => `${e.cameraId}:${e.status}`), [])
    }).pipe(Effect.scoped), 150_000)
})
