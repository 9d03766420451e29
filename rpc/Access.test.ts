/**
 * The access matrix across REST, `/ws` (JSON-RPC), events and live media, on
 * a real server and Postgres: no credentials, expired, tampered and
 * `alg: none` tokens, roles, agency isolation, signed media URLs, refresh
 * rotation, API tokens with camera scope, and rate limits (in process and
 * in a real Redis).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { randomBytes } from "node:crypto"
import { CameraStatusChanged } from "../runtime/events/EventBus.ts"
import { makeSigner } from "../runtime/recording/MediaToken.ts"
import { harness, jsonRpcClient, statusOf } from "../test/support/RpcHarness.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"
const jwtSecret = "jwt-secret-for-tests-0123456789abcdef"
const password = "correct horse battery"

const setup = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap, VMS_JWT_SECRET: jwtSecret, ...env })
    const rest = node.rest
    const admin = { "x-api-key": bootstrap }
    yield* node.sql`INSERT INTO agencies (id, name) VALUES ('a', 'Agency A'), ('b', 'Agency B')`.pipe(Effect.orDie)
    for (const [id, agencyId] of [["cam-a1", "a"], ["cam-b1", "b"]]) {
      const created = yield* rest("POST", "/api/v1/cameras", admin, { id, name: id, url: `rtsp://10.0.0.9/${id}`, agencyId })
      assert.strictEqual(created.status, 201, created.text)
    }
    const user = (username: string, role: string, agencyId: string) =>
      Effect.gen(function*() {
        const created = yield* rest("POST", "/api/v1/users", admin, { username, password, role, agencyId })
        assert.strictEqual(created.status, 201, created.text)
        const login = yield* rest("POST", "/api/v1/auth/login", {}, { username, password })
        assert.strictEqual(login.status, 200, login.text)
        return { authorization: `Bearer ${login.json.accessToken}`, refreshToken: login.json.refreshToken as string }
      })
    return { node, rest, admin, user }
  })

const jwt = (claims: Record<string, unknown>, options: { alg?: string; exp?: number; iss?: string; aud?: string } = {}) => {
  const now = Math.floor(Date.now() / 1000)
  return Effect.promise(() =>
    new SignJWT({ role: "admin", agency: "a", ...claims })
      .setProtectedHeader({ alg: options.alg ?? "HS256" })
      .setSubject("someone")
      .setIssuer(options.iss ?? "vms")
      .setAudience(options.aud ?? "vms-api")
      .setIssuedAt(now - 3600)
      .setExpirationTime(options.exp ?? now + 600)
      .sign(new TextEncoder().encode(jwtSecret))
  )
}

const unsigned = (payload: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${
    Buffer.from(JSON.stringify(payload)).toString("base64url")
  }.`

describe("access control", () => {
  it.live("no, expired, tampered, alg:none and foreign tokens are 401 everywhere", () =>
    Effect.gen(function*() {
      const { node, rest } = yield* setup()
      const none = yield* rest("GET", "/api/v1/cameras")
      assert.strictEqual(none.status, 401)
      assert.strictEqual(none.json.error.code, "Unauthorized")
      assert.isString(none.json.error.requestId)
      assert.strictEqual((yield* rest("GET", "/live/cam-a1/index.m3u8")).status, 401)

      const now = Math.floor(Date.now() / 1000)
      const valid = yield* jwt({})
      assert.strictEqual((yield* rest("GET", "/api/v1/cameras", { authorization: `Bearer ${valid}` })).status, 200)
      const bad = [
        yield* jwt({}, { exp: now - 60 }),
        `${valid.slice(0, -2)}${valid.endsWith("AA") ? "BB" : "AA"}`,
        unsigned({ sub: "x", role: "admin", agency: "a", iss: "vms", aud: "vms-api", exp: now + 600 }),
        yield* jwt({}, { alg: "HS512" }),
        yield* jwt({}, { iss: "someone-else" }),
        yield* jwt({}, { aud: "another-api" }),
        yield* jwt({ role: "superuser" })
      ]
      for (const token of bad) {
        const reply = yield* rest("GET", "/api/v1/cameras", { authorization: `Bearer ${token}` })
        assert.strictEqual(reply.status, 401, token)
        const ws = yield* jsonRpcClient(`${node.ws}/ws`, { authorization: `Bearer ${token}` })
        const rpc = yield* ws.call(1, "get_camera_list")
        assert.strictEqual(rpc.error.code, -32001, token)
        const live = yield* rest("GET", "/live/cam-a1/index.m3u8", { authorization: `Bearer ${token}` })
        assert.strictEqual(live.status, 401, token)
      }
    }))

  it.live("a viewer cannot add cameras (403 in REST, Forbidden in JSON-RPC)", () =>
    Effect.gen(function*() {
      const { node, rest, user } = yield* setup()
      const viewer = yield* user("vera", "viewer", "a")
      const camera = { id: "new-1", name: "New", url: "rtsp://10.0.0.9/new" }
      const reply = yield* rest("POST", "/api/v1/cameras", { authorization: viewer.authorization }, camera)
      assert.strictEqual(reply.status, 403, reply.text)
      assert.strictEqual(reply.json.error.code, "Forbidden")
      const ws = yield* jsonRpcClient(`${node.ws}/ws`, { authorization: viewer.authorization })
      const rpc = yield* ws.call(1, "add_camera", camera)
      assert.strictEqual(rpc.error.code, -32003)
      assert.strictEqual(rpc.error.data._tag, "Forbidden")
      const listed = yield* rest("GET", "/api/v1/cameras", { authorization: viewer.authorization })
      assert.deepStrictEqual(listed.json.items.map((item: any) => item.id), ["cam-a1"])
    }))

  it.live("agency A sees nothing of agency B through REST, RPC, events or live", () =>
    Effect.gen(function*() {
      const { node, rest, user } = yield* setup()
      const a = yield* user("alice", "operator", "a")
      const auth = { authorization: a.authorization }

      const list = yield* rest("GET", "/api/v1/cameras", auth)
      assert.deepStrictEqual(list.json.items.map((item: any) => item.id), ["cam-a1"])
      assert.deepStrictEqual((yield* rest("GET", "/api/v1/cameras?agencyId=b", auth)).json.items, [])
      const from = "2026-01-01T00:00:00Z"
      const to = "2026-01-01T01:00:00Z"
      for (const [method, path, body] of [
        ["GET", "/api/v1/cameras/cam-b1"],
        ["GET", "/api/v1/cameras/cam-b1/status"],
        ["GET", "/api/v1/cameras/cam-b1/snapshot"],
        ["PATCH", "/api/v1/cameras/cam-b1", { name: "mine now" }],
        ["DELETE", "/api/v1/cameras/cam-b1"],
        ["POST", "/api/v1/cameras/cam-b1/recording", { enabled: true }],
        ["GET", `/api/v1/recordings?cameraId=cam-b1&from=${from}&to=${to}`],
        ["GET", `/api/v1/cameras/cam-b1/timeline?from=${from}&to=${to}`],
        ["POST", "/api/v1/viewers", { cameraId: "cam-b1" }]
      ] as const) {
        const reply = yield* rest(method, path, auth, body)
        assert.strictEqual(reply.status, 404, `${method} ${path}: ${reply.text}`)
        assert.notInclude(reply.text, "Agency B")
      }
      const moved = yield* rest("PATCH", "/api/v1/cameras/cam-a1", auth, { agencyId: "b" })
      assert.strictEqual(moved.status, 403, moved.text)
      const foreign = yield* rest("POST", "/api/v1/cameras", auth, { name: "x", url: "rtsp://10.0.0.9/x", agencyId: "b" })
      assert.strictEqual(foreign.status, 403, foreign.text)

      const ws = yield* jsonRpcClient(`${node.ws}/ws`, auth)
      const rpcList = yield* ws.call(1, "get_camera_list")
      assert.deepStrictEqual(rpcList.result.items.map((item: any) => item.id), ["cam-a1"])
      for (const [id, method] of [[2, "get_camera_status"], [3, "remove_camera"], [4, "start_recording"], [5, "take_snapshot"]] as const) {
        const reply = yield* ws.call(id, method, { cameraId: "cam-b1" })
        assert.strictEqual(reply.error?.data?._tag, "CameraNotFound", JSON.stringify(reply))
      }
      const scoped = yield* ws.call(6, "subscribe", { cameraIds: ["cam-b1"] })
      assert.strictEqual(scoped.error?.data?._tag, "CameraNotFound")

      const subscribed = yield* ws.call(7, "subscribe")
      assert.isString(subscribed.result.subscription)
      // Published in order: B's event would arrive first if it leaked.
      yield* node.bus.publish(new CameraStatusChanged({ status: statusOf("cam-b1", "online") }))
      yield* node.bus.publish(new CameraStatusChanged({ status: statusOf("cam-a1", "online") }))
      const first = yield* ws.waitFor("a notification", (message) => message.method === "camera_status_update")
      assert.strictEqual(first.params.cameraId, "cam-a1")
      assert.isFalse(ws.received.some((message) => message.params?.cameraId === "cam-b1"))
    }))

  it.live("live URLs come with viewer sessions: bound to camera and session, tampered, expired or ended is 403", () =>
    Effect.gen(function*() {
      const { rest, user } = yield* setup()
      const a = yield* user("alice", "operator", "a")
      // Credentials alone open live media to admins only; others need a session (it is what the quota counts).
      const direct = yield* rest("GET", "/live/cam-a1/index.m3u8", { authorization: a.authorization })
      assert.strictEqual(direct.status, 403, direct.text)
      assert.strictEqual(direct.json.error.code, "SessionRequired")
      const started = yield* rest("POST", "/api/v1/viewers", { authorization: a.authorization }, { cameraId: "cam-a1" })
      assert.strictEqual(started.status, 201, started.text)
      const url: string = started.json.liveUrl
      assert.match(url, /^\/live\/cam-a1\/index\.m3u8\?token=/)
      // The URL opens the camera's playlist without credentials (no stream runs here, hence 404 from the registry).
      const opened = yield* rest("GET", url)
      assert.strictEqual(opened.status, 404, opened.text)
      assert.include(opened.text, "is not live")
      const token = new URL(url, "http://x").searchParams.get("token")!
      const segment = yield* rest("GET", `/live/cam-a1/seg_1.ts?token=${encodeURIComponent(token)}`)
      assert.notStrictEqual(segment.status, 403)

      const tampered = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`
      assert.strictEqual((yield* rest("GET", `/live/cam-a1/index.m3u8?token=${tampered}`)).status, 403)
      assert.strictEqual((yield* rest("GET", `/live/cam-b1/index.m3u8?token=${encodeURIComponent(token)}`)).status, 403)
      const signer = makeSigner(jwtSecret)
      // A plain path token (as recorded media uses) opens no live media.
      assert.strictEqual((yield* rest("GET", `/live/cam-a1/index.m3u8?token=${signer.sign("/live/cam-a1/", Date.now() + 60_000)}`)).status, 403)
      const expired = signer.signSession("/live/cam-a1/", started.json.sessionId, Date.now() - 60_000)
      const late = yield* rest("GET", `/live/cam-a1/index.m3u8?token=${expired}`)
      assert.strictEqual(late.status, 403)
      assert.include(late.text, "expired")

      const stopped = yield* rest("DELETE", `/api/v1/viewers/${started.json.sessionId}`, { authorization: a.authorization })
      assert.strictEqual(stopped.status, 200, stopped.text)
      const ended = yield* rest("GET", url)
      assert.strictEqual(ended.status, 403, ended.text)
      assert.strictEqual(ended.json.error.code, "SessionEnded")
    }))

  it.live("refresh tokens rotate; reusing one revokes the family; password guessing is limited", () =>
    Effect.gen(function*() {
      const { rest, user } = yield* setup()
      const a = yield* user("alice", "operator", "a")
      const first = yield* rest("POST", "/api/v1/auth/refresh", {}, { refreshToken: a.refreshToken })
      assert.strictEqual(first.status, 200, first.text)
      assert.notStrictEqual(first.json.refreshToken, a.refreshToken)
      const works = yield* rest("GET", "/api/v1/cameras", { authorization: `Bearer ${first.json.accessToken}` })
      assert.strictEqual(works.status, 200)
      const reused = yield* rest("POST", "/api/v1/auth/refresh", {}, { refreshToken: a.refreshToken })
      assert.strictEqual(reused.status, 401)
      const afterReuse = yield* rest("POST", "/api/v1/auth/refresh", {}, { refreshToken: first.json.refreshToken })
      assert.strictEqual(afterReuse.status, 401)
      const wrong = yield* rest("POST", "/api/v1/auth/login", {}, { username: "alice", password: "not the password" })
      assert.strictEqual(wrong.status, 401)
      const nobody = yield* rest("POST", "/api/v1/auth/login", {}, { username: "nobody", password })
      assert.strictEqual(nobody.status, 401)
      // Password guessing: 10 attempts a minute per username, then 429 with Retry-After.
      const statuses: Array<number> = []
      for (let i = 0; i < 10; i++) {
        statuses.push((yield* rest("POST", "/api/v1/auth/login", {}, { username: "mallory", password: `guess ${i}` })).status)
      }
      assert.deepStrictEqual(statuses, Array.from({ length: 10 }, () => 401))
      const limited = yield* rest("POST", "/api/v1/auth/login", {}, { username: "mallory", password: "guess 10" })
      assert.strictEqual(limited.status, 429, limited.text)
      assert.isAtLeast(Number(limited.headers.get("retry-after")), 1)
    }))

  it.live("API tokens: hashed at rest, camera scope, revocation; changes are audited", () =>
    Effect.gen(function*() {
      const { node, rest, admin } = yield* setup()
      const recording = yield* rest("POST", "/api/v1/cameras/cam-a1/recording", admin, { enabled: true })
      assert.strictEqual(recording.status, 200, recording.text)
      const created = yield* rest("POST", "/api/v1/tokens", admin, {
        name: "wall display",
        role: "viewer",
        agencyId: "a",
        cameraIds: ["cam-a1"]
      })
      assert.strictEqual(created.status, 201, created.text)
      const key = created.json.token as string
      const stored = yield* node.sql<{ tokenHash: string }>`SELECT token_hash AS "tokenHash" FROM api_tokens`.pipe(Effect.orDie)
      assert.notInclude(JSON.stringify(stored), key)
      const listed = yield* rest("GET", "/api/v1/cameras", { "x-api-key": key })
      assert.deepStrictEqual(listed.json.items.map((item: any) => item.id), ["cam-a1"])
      assert.strictEqual((yield* rest("GET", "/api/v1/tokens", { "x-api-key": key })).status, 403)
      const revoked = yield* rest("DELETE", `/api/v1/tokens/${created.json.id}`, admin)
      assert.strictEqual(revoked.status, 204, revoked.text)
      assert.strictEqual((yield* rest("GET", "/api/v1/cameras", { "x-api-key": key })).status, 401)
      const audit = yield* node.sql<{ action: string }>`SELECT action FROM audit_log ORDER BY id`.pipe(Effect.orDie)
      assert.deepStrictEqual(audit.map((row) => row.action), ["camera.create", "camera.create", "recording.start", "token.create", "token.revoke"])
      const actors = yield* node.sql<{ actorKind: string; actorId: string }>`
        SELECT DISTINCT actor_kind AS "actorKind", actor_id AS "actorId" FROM audit_log`.pipe(Effect.orDie)
      assert.deepStrictEqual(actors, [{ actorKind: "bootstrap", actorId: "bootstrap" }])
    }))

  const rateLimits = (env: Record<string, string>) =>
    Effect.gen(function*() {
      const { node, rest, admin } = yield* setup(env)
      const token = (name: string, rateLimitPerMinute?: number) =>
        rest("POST", "/api/v1/tokens", admin, {
          name,
          role: "viewer",
          agencyId: "a",
          ...(rateLimitPerMinute === undefined ? {} : { rateLimitPerMinute })
        }).pipe(Effect.map((reply) => reply.json.token as string))
      const limited = yield* token("limited", 3)
      const other = yield* token("other")
      const statuses: Array<number> = []
      for (let i = 0; i < 3; i++) statuses.push((yield* rest("GET", "/api/v1/cameras", { "x-api-key": limited })).status)
      assert.deepStrictEqual(statuses, [200, 200, 200])
      const refused = yield* rest("GET", "/api/v1/cameras", { "x-api-key": limited })
      assert.strictEqual(refused.status, 429, refused.text)
      assert.strictEqual(refused.json.error.code, "RateLimited")
      assert.isAtLeast(Number(refused.headers.get("retry-after")), 1)
      const ws = yield* jsonRpcClient(`${node.ws}/ws`, { "x-api-key": limited })
      const rpc = yield* ws.call(1, "get_camera_list")
      assert.strictEqual(rpc.error.code, -32029)
      assert.isAtLeast(rpc.error.data.retryAfterSeconds, 1)
      assert.strictEqual((yield* rest("GET", "/api/v1/cameras", { "x-api-key": other })).status, 200)
    })

  it.live("over the rate limit: 429 with Retry-After, others unaffected (in process)", () => rateLimits({}))

  it.live("over the rate limit: 429 with Retry-After, others unaffected (Redis)", () =>
    rateLimits({ VMS_REDIS_URL: "redis://127.0.0.1:6379", VMS_CLUSTER: `t${randomBytes(6).toString("hex")}` }))
})
