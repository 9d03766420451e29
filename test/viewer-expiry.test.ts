/**
 * A viewer that stops heartbeating loses its session within 35 s (the
 * timeout is 30 s) and its slot goes to the next caller, while sessions kept
 * by explicit heartbeats, or by a player fetching the session's live
 * playlist, live on. Real server, Postgres and quota actors, real time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { harness } from "./support/RpcHarness.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"
const password = "correct horse battery"

describe("viewer session expiry", () => {
  it.live("no heartbeat for 30 s ends a session and frees its slot; heartbeats and playlist fetches keep others", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const rest = node.rest
      const admin = { "x-api-key": bootstrap }
      const login = (username: string, agencyId: string) =>
        Effect.gen(function*() {
          assert.strictEqual((yield* rest("POST", "/api/v1/users", admin, { username, password, role: "viewer", agencyId })).status, 201)
          const session = yield* rest("POST", "/api/v1/auth/login", {}, { username, password })
          return { authorization: `Bearer ${session.json.accessToken}` }
        })
      for (const [id, maxLiveStreams] of [["quiet", 1], ["busy", 2]] as const) {
        assert.strictEqual((yield* rest("POST", "/api/v1/agencies", admin, { id, name: id, maxLiveStreams })).status, 201)
        const camera = { id: `${id}-cam`, name: id, url: `rtsp://cameras.example/${id}`, agencyId: id, enabled: false }
        assert.strictEqual((yield* rest("POST", "/api/v1/cameras", admin, camera)).status, 201)
      }
      const [quiet, next, busy] = [yield* login("quiet", "quiet"), yield* login("next", "quiet"), yield* login("busy", "busy")]

      const silent = yield* rest("POST", "/api/v1/viewers", quiet, { cameraId: "quiet-cam" })
      assert.strictEqual(silent.status, 201, silent.text)
      const startedAt = Date.now()
      const beating = yield* rest("POST", "/api/v1/viewers", busy, { cameraId: "busy-cam" })
      const watching = yield* rest("POST", "/api/v1/viewers", busy, { cameraId: "busy-cam" })
      assert.strictEqual(watching.status, 201, watching.text)
      // One keeps its session with explicit heartbeats every 10 s, one as a player does, fetching the playlist.
      yield* rest("POST", `/api/v1/viewers/${beating.json.sessionId}/heartbeat`, busy).pipe(
        Effect.repeat(Schedule.spaced("10 seconds")),
        Effect.forkScoped
      )
      yield* rest("GET", watching.json.liveUrl).pipe(Effect.repeat(Schedule.spaced("2 seconds")), Effect.forkScoped)

      assert.strictEqual((yield* rest("POST", "/api/v1/viewers", next, { cameraId: "quiet-cam" })).status, 429)
      // The next caller asks every half second until the silent session's slot is theirs.
      let grantedAt = 0
      while (grantedAt === 0) {
        const asked = yield* rest("POST", "/api/v1/viewers", next, { cameraId: "quiet-cam" })
        if (asked.status === 201) grantedAt = Date.now()
        else {
          assert.strictEqual(asked.status, 429, asked.text)
          assert.isBelow(Date.now() - startedAt, 35_000, "the silent session still holds its slot after 35 s")
          yield* Effect.sleep("500 millis")
        }
      }
      const after = grantedAt - startedAt
      assert.isAtLeast(after, 29_000, `slot freed after ${after} ms`)
      assert.isAtMost(after, 35_000, `slot freed after ${after} ms`)

      const ended = yield* rest("GET", silent.json.liveUrl)
      assert.strictEqual(ended.status, 403, ended.text)
      assert.strictEqual(ended.json.error.code, "SessionEnded")
      assert.strictEqual((yield* rest("POST", `/api/v1/viewers/${silent.json.sessionId}/heartbeat`, quiet)).status, 404)
      for (const kept of [beating, watching]) {
        const beat = yield* rest("POST", `/api/v1/viewers/${kept.json.sessionId}/heartbeat`, busy)
        assert.strictEqual(beat.status, 200, `${kept.json.sessionId}: ${beat.text}`)
      }
    }).pipe(Effect.scoped), 60_000)
})
