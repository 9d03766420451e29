/**
 * Viewer sessions and agency quotas through every API, on a real server,
 * Postgres and the real quota actors: a refusal is the typed
 * `QuotaExceeded { agencyId, limit, inUse }` on REST, JSON-RPC and the typed
 * client; stopping frees the slot at once and ends the live URL; sessions
 * belong to their holder; agencies and their limits are admins' to change,
 * audited, and a change holds at the next admission; metrics count it all.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Metrics } from "../runtime/metrics/Metrics.ts"
import { harness, jsonRpcClient } from "../test/support/RpcHarness.ts"
import { VmsClient } from "./Client.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"
const password = "correct horse battery"

const setup = Effect.gen(function*() {
  const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
  const rest = node.rest
  const admin = { "x-api-key": bootstrap }
  const agency = yield* rest("POST", "/api/v1/agencies", admin, { name: "Transit Police", maxLiveStreams: 2 })
  assert.strictEqual(agency.status, 201, agency.text)
  assert.strictEqual(agency.json.id, "transit-police")
  for (const id of ["tp-1", "tp-2"]) {
    const created = yield* rest("POST", "/api/v1/cameras", admin, {
      id,
      name: id,
      url: `rtsp://cameras.example/${id}`,
      agencyId: "transit-police",
      enabled: false
    })
    assert.strictEqual(created.status, 201, created.text)
  }
  const user = (username: string, role = "viewer", agencyId = "transit-police") =>
    Effect.gen(function*() {
      const created = yield* rest("POST", "/api/v1/users", admin, { username, password, role, agencyId })
      assert.strictEqual(created.status, 201, created.text)
      const login = yield* rest("POST", "/api/v1/auth/login", {}, { username, password })
      assert.strictEqual(login.status, 200, login.text)
      return { authorization: `Bearer ${login.json.accessToken}` as string, accessToken: login.json.accessToken as string }
    })
  const metric = (name: string, agency: string) =>
    Effect.promise(async () => {
      const text = await Context.get(node.context, Metrics).registry.metrics()
      const line = text.split("\n").find((l) => l.startsWith(`${name}{agency="${agency}"}`))
      return line === undefined ? undefined : Number(line.split(" ").pop())
    })
  return { node, rest, admin, user, metric }
})

describe("viewer sessions and agency quotas", () => {
  it.live("a refusal is QuotaExceeded on REST, JSON-RPC and the typed client; stopping frees the slot at once", () =>
    Effect.gen(function*() {
      const { node, rest, user, metric } = yield* setup
      const vera = yield* user("vera")
      const auth = { authorization: vera.authorization }

      const first = yield* rest("POST", "/api/v1/viewers", auth, { cameraId: "tp-1" })
      assert.strictEqual(first.status, 201, first.text)
      assert.deepInclude(first.json, { cameraId: "tp-1", agencyId: "transit-police", timeoutSeconds: 30 })
      const ws = yield* jsonRpcClient(`${node.ws}/ws`, auth)
      const second = yield* ws.call(1, "start_viewing", { cameraId: "tp-2" })
      assert.match(second.result.liveUrl, /^\/live\/tp-2\/index\.m3u8\?token=/)

      const refusedRest = yield* rest("POST", "/api/v1/viewers", auth, { cameraId: "tp-1" })
      assert.strictEqual(refusedRest.status, 429, refusedRest.text)
      assert.strictEqual(refusedRest.json.error.code, "QuotaExceeded")
      assert.deepInclude(refusedRest.json.error.details, { agencyId: "transit-police", limit: 2, inUse: 2, kind: "live" })
      const refusedRpc = yield* ws.call(2, "start_viewing", { cameraId: "tp-1" })
      assert.strictEqual(refusedRpc.error.code, -32042)
      assert.deepInclude(refusedRpc.error.data, { _tag: "QuotaExceeded", agencyId: "transit-police", limit: 2, inUse: 2 })
      const typed = Context.get(
        yield* Layer.build(VmsClient.layer(`${node.ws}/rpc`, { accessToken: vera.accessToken })),
        VmsClient
      )
      const refusedTyped = yield* Effect.flip(typed.start_viewing({ cameraId: "tp-1" }))
      assert.strictEqual(refusedTyped._tag, "QuotaExceeded")
      assert.deepInclude(refusedTyped, { agencyId: "transit-police", limit: 2, inUse: 2 })

      assert.strictEqual(yield* metric("vms_viewers", "transit-police"), 2)
      assert.strictEqual(yield* metric("vms_quota_in_use", "transit-police"), 2)
      assert.strictEqual(yield* metric("vms_quota_denials_total", "transit-police"), 3)

      // Heartbeats keep it; stop frees the slot at once, and the session's URL opens nothing any more.
      const beat = yield* typed.heartbeat({ sessionId: first.json.sessionId })
      assert.strictEqual(beat.sessionId, first.json.sessionId)
      const stopped = yield* ws.call(3, "stop_viewing", { sessionId: first.json.sessionId })
      assert.strictEqual(stopped.result.sessionId, first.json.sessionId)
      const token = new URL(first.json.liveUrl, "http://x").searchParams.get("token")!
      const segment = yield* rest("GET", `/live/tp-1/seg_3.ts?token=${encodeURIComponent(token)}`)
      assert.strictEqual(segment.status, 403, segment.text)
      assert.strictEqual(segment.json.error.code, "SessionEnded")
      const third = yield* typed.start_viewing({ cameraId: "tp-1" })
      assert.strictEqual(third.cameraId, "tp-1")
      const again = yield* ws.call(4, "heartbeat", { sessionId: first.json.sessionId })
      assert.strictEqual(again.error.data._tag, "SessionNotFound")
    }).pipe(Effect.scoped))

  it.live("a session is its holder's: others cannot renew or end it; admins can end any", () =>
    Effect.gen(function*() {
      const { rest, admin, user } = yield* setup
      const [vera, otto] = [yield* user("vera"), yield* user("otto", "operator")]
      const started = yield* rest("POST", "/api/v1/viewers", { authorization: vera.authorization }, { cameraId: "tp-1" })
      assert.strictEqual(started.status, 201, started.text)
      const id = started.json.sessionId
      for (const [method, path] of [["POST", `/api/v1/viewers/${id}/heartbeat`], ["DELETE", `/api/v1/viewers/${id}`]] as const) {
        const reply = yield* rest(method, path, { authorization: otto.authorization })
        assert.strictEqual(reply.status, 404, reply.text)
        assert.strictEqual(reply.json.error.code, "SessionNotFound")
      }
      const beat = yield* rest("POST", `/api/v1/viewers/${id}/heartbeat`, { authorization: vera.authorization })
      assert.strictEqual(beat.status, 200, beat.text)
      assert.isAbove(Date.parse(beat.json.expiresAt), Date.parse(started.json.expiresAt) - 1)
      assert.strictEqual((yield* rest("DELETE", `/api/v1/viewers/${id}`, admin)).status, 200)
      assert.strictEqual((yield* rest("POST", `/api/v1/viewers/${id}/heartbeat`, { authorization: vera.authorization })).status, 404)
      // Not a session id at all, and a camera of nobody's: nothing is woken, nothing is said.
      assert.strictEqual((yield* rest("DELETE", "/api/v1/viewers/not-a-session", admin)).status, 404)
      const ghost = yield* rest("POST", "/api/v1/viewers", { authorization: vera.authorization }, { cameraId: "nope" })
      assert.strictEqual(ghost.status, 404, ghost.text)
      // Bad input names the field.
      const bad = yield* rest("POST", "/api/v1/viewers", { authorization: vera.authorization }, { cameraId: "" })
      assert.strictEqual(bad.status, 400, bad.text)
      assert.include(bad.json.error.message, "cameraId")
    }).pipe(Effect.scoped))

  it.live("agencies: admins create and change limits (audited), a change holds at the next admission, others only read their own", () =>
    Effect.gen(function*() {
      const { node, rest, admin, user } = yield* setup
      const vera = yield* user("vera")
      const auth = { authorization: vera.authorization }
      assert.strictEqual((yield* rest("POST", "/api/v1/agencies", auth, { name: "Mine", maxLiveStreams: 100 })).status, 403)
      assert.strictEqual((yield* rest("PATCH", "/api/v1/agencies/transit-police", auth, { maxLiveStreams: 100 })).status, 403)
      const bad = yield* rest("POST", "/api/v1/agencies", admin, { name: "Bad", maxLiveStreams: -1 })
      assert.strictEqual(bad.status, 400, bad.text)
      assert.include(bad.json.error.message, "maxLiveStreams")
      const taken = yield* rest("POST", "/api/v1/agencies", admin, { name: "Transit Police", maxLiveStreams: 1 })
      assert.strictEqual(taken.status, 409, taken.text)

      // One viewer per camera: the second viewer of tp-1 is refused, naming the camera, while tp-2 has room.
      const perCamera = yield* rest("PATCH", "/api/v1/agencies/transit-police", admin, { maxLiveStreams: 3, maxViewersPerCamera: 1 })
      assert.strictEqual(perCamera.status, 200, perCamera.text)
      assert.strictEqual((yield* rest("POST", "/api/v1/viewers", auth, { cameraId: "tp-1" })).status, 201)
      const crowded = yield* rest("POST", "/api/v1/viewers", auth, { cameraId: "tp-1" })
      assert.strictEqual(crowded.status, 429, crowded.text)
      assert.deepInclude(crowded.json.error.details, { cameraId: "tp-1", limit: 1, inUse: 1 })
      assert.strictEqual((yield* rest("POST", "/api/v1/viewers", auth, { cameraId: "tp-2" })).status, 201)
      // Lowered below what is in use: sessions keep their slots, new ones wait.
      assert.strictEqual((yield* rest("PATCH", "/api/v1/agencies/transit-police", admin, { maxLiveStreams: 1, maxViewersPerCamera: null })).status, 200)
      assert.strictEqual((yield* rest("POST", "/api/v1/viewers", auth, { cameraId: "tp-1" })).status, 429)

      const mine = yield* rest("GET", "/api/v1/agencies", auth)
      assert.deepStrictEqual(mine.json.items.map((a: any) => a.id), ["transit-police"])
      const all = yield* rest("GET", "/api/v1/agencies", admin)
      assert.includeMembers(all.json.items.map((a: any) => a.id), ["default", "transit-police"])
      const detail = yield* rest("GET", "/api/v1/agencies/transit-police", auth)
      assert.deepInclude(detail.json, { maxLiveStreams: 1, maxViewersPerCamera: null, inUse: { live: 2, playback: 0 } })
      assert.strictEqual((yield* rest("GET", "/api/v1/agencies/default", auth)).status, 404)

      const audited = yield* node.sql<{ action: string; target_id: string }>`
        SELECT action, target_id FROM audit_log WHERE target_type = 'agency' ORDER BY id`.pipe(Effect.orDie)
      assert.deepStrictEqual(audited.map((row) => `${row.action} ${row.target_id}`), [
        "agency.create transit-police",
        "agency.update transit-police",
        "agency.update transit-police"
      ])
    }).pipe(Effect.scoped))
})
