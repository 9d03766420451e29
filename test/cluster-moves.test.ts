/**
 * Planned moves in a cluster of real nodes: a node stopped with SIGTERM hands
 * its cameras over with a short live interruption, a fourth node that joins
 * gets a fair share, and a WebSocket subscriber on one node receives the
 * status events of cameras owned by the others within 50 ms.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { addCamera, allOnline, gauge, pulledTwice, startNode, statusEvents } from "./support/Cluster.ts"
import { eventually } from "./support/Eventually.ts"
import { chunkCadenceMs, interruption, watchLive } from "../benchmarks/LiveTimeline.ts"
import { natsUrl, testNamespace } from "./support/Nats.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"

const setup = (cameraCount: number) =>
  Effect.gen(function*() {
    const simulator = yield* startTestSimulator({ cameras: cameraCount })
    const prefix = `rtsp://127.0.0.1:${simulator.port}/`
    const cluster = { natsUrl: yield* natsUrl, databaseUrl: yield* testDatabaseUrl, namespace: testNamespace() }
    const nodes = yield* Effect.all(["m1", "m2", "m3"].map((id) => startNode(cluster, id)), { concurrency: "unbounded" })
    // Subscribed on the first node before any camera exists: it sees every camera come online, on every node.
    const events = yield* statusEvents(nodes[0]!)
    const cameraIds = Array.from({ length: cameraCount }, (_, i) => `cam${i}`)
    yield* Effect.forEach(cameraIds, (id, i) => addCamera(nodes[0]!, id, `${prefix}cam${i}`), { concurrency: 4 })
    const before = yield* allOnline(nodes[0]!, cameraIds, nodes.map((n) => n.id), 40_000)
    return { cluster, prefix, nodes, cameraIds, before, events }
  })

/** `VMS_FFMPEG_WARM`'s default: the nodes here run with it. */
const defaultWarmFfmpegs = 12

describe("cluster moves", () => {
  it.live("SIGTERM hands a node's cameras over with a short interruption; events cross nodes within 50 ms", () =>
    Effect.gen(function*() {
      const { prefix, nodes, cameraIds, before, events } = yield* setup(12)
      // The busier of the two nodes that are not watching leaves: more cameras move.
      const count = (id: string) => before.filter((s) => s.nodeId === id).length
      const [leaving, watcher] = [count("m2") > count("m3") ? nodes[1]! : nodes[2]!, nodes[0]!]
      const itsCameras = before.filter((s) => s.nodeId === leaving.id).map((s) => s.cameraId)
      assert.isAbove(itsCameras.length, 0)
      // Every node's own live playlist of those cameras, polled every 100 ms from a few chunks before the signal.
      const timeline = yield* watchLive(nodes, itsCameras, 100)
      // And the machine's ffmpegs every 100 ms: never two pulling one camera during the handover.
      const doubles: Array<string> = []
      const scanner = yield* Effect.forkScoped(Effect.forever(
        Effect.andThen(Effect.map(pulledTwice(prefix), (found) => void doubles.push(...found)), Effect.sleep("100 millis"))
      ))
      yield* Effect.sleep("3 seconds")
      const stoppedAt = Date.now()
      process.kill(leaving.pid, "SIGTERM")
      const survivors = nodes.filter((n) => n !== leaving)
      yield* allOnline(watcher, cameraIds, survivors.map((n) => n.id), 20_000)
      assert.strictEqual(yield* leaving.process.exited, 0)
      assert.deepStrictEqual(yield* pulledTwice(prefix), [])
      yield* eventually("the new owners' first chunks are seen", Effect.sync(() =>
        itsCameras.every((id) => interruption(timeline, id, leaving.id, stoppedAt) !== undefined) ? true : undefined), 5_000, 50)
      yield* timeline.stop
      yield* Fiber.interrupt(scanner)
      assert.deepStrictEqual(doubles, [], "two ffmpegs pulled one camera")
      // The live interruption as a viewer gets it (LiveTimeline): `mediaGapMs`, the camera's live media
      // that no node listed — from the end of the last chunk listed before the new owner's own first
      // chunk (the leaving node's last chunk, which its successor lists too, from the tail the leaver
      // handed over) to the start of that first chunk (wall clock) — and `waitMs`, the time between
      // those two chunks being first listed. The gap is the handover itself plus the wait for the
      // camera's next keyframe (0-1 s here): the leaver's ffmpeg stops, its shard is released, the
      // successor starts its ffmpeg, which plays from the next keyframe.
      const moves = itsCameras.map((cameraId) => interruption(timeline, cameraId, leaving.id, stoppedAt)!)
      // And the older upper bound: from the signal to `online` (first chunk) on the new owner.
      const back = itsCameras.map((cameraId) => {
        const online = events.find((e) => e.cameraId === cameraId && e.status === "online" && e.nodeId !== leaving.id &&
          Date.parse(e.updatedAt) >= stoppedAt
        )
        assert.isDefined(online, `${cameraId} came back online`)
        return Date.parse(online!.updatedAt) - stoppedAt
      })
      const figures = {
        mediaGapMs: moves.map((m) => m.mediaGapMs).join(","),
        waitMs: moves.map((m) => m.waitMs).join(","),
        tailChunks: moves.map((m) => m.tailChunks).join(","),
        cadenceMs: itsCameras.map((id) => chunkCadenceMs(timeline, id, leaving.id)).join(","),
        signalToOnlineMs: back.join(",")
      }
      yield* Effect.logInfo("handover").pipe(Effect.annotateLogs(figures))
      // Every successor went on from the leaver's last chunks (its playlist lists them before its own).
      for (const move of moves) assert.isAbove(move.tailChunks, 0, JSON.stringify(move))
      // A guard against regressions, not the target (issue 4 asks for ≤ 2 s): `vms bench handover`
      // measures that, over many stops (benchmarks/results/handover*.md; with 12 cameras on the 2-core
      // VM of 2026-12-07, p50 0.99 s, max 1.65 s over 49 moves). The guard leaves room for CI's test
      // files running beside this one; the distribution of each run is in the log line above.
      assert.isAtMost(Math.max(...moves.map((m) => m.mediaGapMs)), 4_000, JSON.stringify(figures))
      assert.isAtMost(Math.max(...back), 6_000, JSON.stringify(figures))

      // One change at a time on cameras of the other survivor: the watcher hears of each within 50 ms.
      // Measured once the move is over: the survivors start their waiting ffmpegs again after it
      // (WarmFfmpeg, one every 0.2 s), and Node's spawn holds a node's event loop until the new
      // process has exec'd: 10-20 ms here on an idle machine, 30-90 ms while three nodes, their
      // ffmpegs and this test share two cores; a change in that moment reaches the watcher late.
      yield* eventually("the survivors' waiting ffmpegs are all started again", Effect.map(
        Effect.forEach(survivors, (node) => gauge(node, "vms_ffmpeg_warm_idle")),
        (idle) => idle.every((n) => n >= defaultWarmFfmpegs) ? idle : undefined
      ), 20_000, 200)
      const other = survivors.find((n) => n !== watcher)!
      const final = yield* allOnline(watcher, cameraIds, survivors.map((n) => n.id), 10_000)
      const remoteCameras = final.filter((s) => s.nodeId === other.id).slice(0, 5).map((s) => s.cameraId)
      assert.isAbove(remoteCameras.length, 0)
      const delays: Array<number> = []
      for (const cameraId of remoteCameras) {
        const response = yield* Effect.promise(() =>
          fetch(`${other.baseUrl}/api/v1/cameras/${cameraId}`, {
            method: "PATCH",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ enabled: false })
          }))
        assert.strictEqual(response.status, 200)
        const disabled = yield* eventually(`${cameraId} disabled event`, Effect.sync(() =>
          events.find((e) => e.cameraId === cameraId && e.status === "disabled")), 5_000, 10)
        delays.push(disabled.receivedAt - Date.parse(disabled.updatedAt))
      }
      yield* Effect.logInfo("remote events").pipe(Effect.annotateLogs({ delaysMs: delays.join(",") }))
      assert.isAtMost(Math.max(...delays), 50, `event delays (ms): ${delays.join(", ")}`)
    }).pipe(Effect.scoped), 120_000)

  it.live("a fourth node that joins gets a fair share of the cameras", () =>
    Effect.gen(function*() {
      const { cluster, cameraIds, nodes } = yield* setup(24)
      const joined = yield* startNode(cluster, "m4")
      const all = [...nodes, joined]
      const spread = yield* eventually("the new node runs a share of the cameras", Effect.map(
        allOnline(nodes[0]!, cameraIds, all.map((n) => n.id), 30_000),
        (statuses) => {
          const counts = new Map<string, number>()
          for (const s of statuses) counts.set(s.nodeId, (counts.get(s.nodeId) ?? 0) + 1)
          return (counts.get("m4") ?? 0) >= 2 ? counts : undefined
        }
      ), 40_000, 500)
      // A fair share: with 24 cameras on 4 nodes, the newcomer holds several, and nobody holds most.
      assert.isAtLeast(spread.get("m4") ?? 0, 2, JSON.stringify([...spread]))
      assert.isAtMost(Math.max(...spread.values()), 14, JSON.stringify([...spread]))
    }).pipe(Effect.scoped), 150_000)
})
