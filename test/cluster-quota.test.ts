/**
 * Agency quotas in a cluster of three real nodes sharing Redis: 50
 * concurrent `start_viewing` calls spread over the nodes admit exactly the
 * limit; killing the node that holds the agency's quota actor loses no
 * reservation and admits no extra viewer, before, during or after the move.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ClusterNode, json, startNode } from "./support/Cluster.ts"
import { eventually } from "./support/Eventually.ts"
import { natsUrl, testNamespace } from "./support/Nats.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"

const bootstrap = "bootstrap-token-for-cluster-tests-0123"
const admin = { "x-api-key": bootstrap, "content-type": "application/json" }

interface Reply {
  readonly status: number
  readonly body: any
}

const call = (url: string, init?: RequestInit): Effect.Effect<Reply> => json(url, init)

const post = (node: ClusterNode, path: string, body: unknown, headers: Record<string, string>) =>
  call(`${node.baseUrl}${path}`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) })

/** The node whose quota actor reports the agency (only that node exports its gauge). */
const quotaHolder = (nodes: ReadonlyArray<ClusterNode>, agencyId: string) =>
  Effect.forEach(nodes, (node) =>
    Effect.promise(() =>
      fetch(`${node.baseUrl}/metrics`).then((r) => r.text()).then((text) =>
        text.split("\n").some((line) => line.startsWith(`vms_quota_in_use{agency="${agencyId}"}`)) ? node : undefined
      ).catch(() => undefined)
    )).pipe(Effect.map((found) => found.filter((node) => node !== undefined)))

/** `count` concurrent starts, round-robin over `nodes`; answers the statuses and the granted sessions. */
const startMany = (nodes: ReadonlyArray<ClusterNode>, count: number, apiKey: string) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => nodes[i % nodes.length]!),
    (node) => post(node, "/api/v1/viewers", { cameraId: "q-cam" }, { "x-api-key": apiKey }),
    { concurrency: "unbounded" }
  )

describe("cluster quotas", () => {
  it.live("50 concurrent start_viewing over 3 nodes admit exactly 5; killing the quota actor's node loses nothing and admits nothing extra", () =>
    Effect.gen(function*() {
      const cluster = { natsUrl: yield* natsUrl, databaseUrl: yield* testDatabaseUrl, namespace: testNamespace() }
      const nodes = yield* Effect.all(
        ["q1", "q2", "q3"].map((id) => startNode(cluster, id, { VMS_BOOTSTRAP_TOKEN: bootstrap })),
        { concurrency: "unbounded" }
      )
      const agency = yield* post(nodes[0]!, "/api/v1/agencies", { id: "quota-x", name: "Quota X", maxLiveStreams: 5 }, admin)
      assert.strictEqual(agency.status, 201, JSON.stringify(agency.body))
      const camera = { id: "q-cam", name: "Q", url: "rtsp://cameras.example/q", agencyId: "quota-x", enabled: false }
      assert.strictEqual((yield* post(nodes[1]!, "/api/v1/cameras", camera, admin)).status, 201)
      const token = yield* post(nodes[2]!, "/api/v1/tokens", { name: "wall", role: "viewer", agencyId: "quota-x" }, admin)
      assert.strictEqual(token.status, 201, JSON.stringify(token.body))
      const apiKey: string = token.body.token

      const first = yield* startMany(nodes, 50, apiKey)
      const granted = first.filter((r) => r.status === 201)
      const refused = first.filter((r) => r.status === 429)
      assert.strictEqual(granted.length, 5, JSON.stringify(first.filter((r) => r.status !== 429).map((r) => r.body)))
      assert.strictEqual(refused.length, 45)
      for (const reply of refused) {
        assert.strictEqual(reply.body.error.code, "QuotaExceeded")
        assert.deepInclude(reply.body.error.details, { agencyId: "quota-x", limit: 5, inUse: 5 })
      }

      const [holder] = yield* eventually("one node reports the agency", Effect.map(quotaHolder(nodes, "quota-x"), (found) =>
        found.length === 1 ? found : undefined), 15_000, 200)
      process.kill(holder!.pid, "SIGKILL")
      const survivors = nodes.filter((node) => node !== holder)

      // While its actor moves: nothing is admitted (a refusal, or 503 while the shard has no owner).
      const during = yield* startMany(survivors, 20, apiKey)
      assert.deepStrictEqual(during.filter((r) => r.status !== 429 && r.status !== 503), [])
      // Moved: the actor answers from a survivor, and still refuses.
      yield* eventually("the quota actor answers again", Effect.map(
        post(survivors[0]!, "/api/v1/viewers", { cameraId: "q-cam" }, { "x-api-key": apiKey }),
        (r) => r.status === 429 ? true : undefined
      ), 20_000, 200)
      const after = yield* startMany(survivors, 50, apiKey)
      assert.deepStrictEqual(after.map((r) => r.status), Array(50).fill(429))

      // No reservation lost: every granted session still heartbeats, through either survivor.
      for (const [i, session] of granted.entries()) {
        const beat = yield* post(survivors[i % 2]!, `/api/v1/viewers/${session.body.sessionId}/heartbeat`, {}, { "x-api-key": apiKey })
        assert.strictEqual(beat.status, 200, JSON.stringify(beat.body))
      }
      const usage = yield* call(`${survivors[0]!.baseUrl}/api/v1/agencies/quota-x`, { headers: admin })
      assert.deepStrictEqual(usage.body.inUse, { live: 5, playback: 0 })

      // One stops; of ten callers at once exactly one gets the slot.
      const stopped = yield* call(`${survivors[1]!.baseUrl}/api/v1/viewers/${granted[0]!.body.sessionId}`, {
        method: "DELETE",
        headers: { "x-api-key": apiKey }
      })
      assert.strictEqual(stopped.status, 200, JSON.stringify(stopped.body))
      const race = yield* startMany(survivors, 10, apiKey)
      assert.strictEqual(race.filter((r) => r.status === 201).length, 1, JSON.stringify(race.map((r) => r.status)))
    }).pipe(Effect.scoped), 120_000)
})
