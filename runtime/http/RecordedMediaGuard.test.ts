/**
 * The guard of the recorded-media routes on a real server and Postgres, in
 * front of stand-in routes (the real ones are covered by the playback and
 * export tests): credentials, roles, agencies, signed tokens, and the export
 * audit entry.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { NetAddress } from "effect/net"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import * as TestAuth from "../../test/support/TestAuth.ts"
import * as TestDatabase from "../../test/support/TestDatabase.ts"
import * as TestQuota from "../../test/support/TestQuota.ts"
import { CredentialStore } from "../auth/CredentialStore.ts"
import * as CameraStore from "../cameras/CameraStore.ts"
import * as Migrations from "../database/Migrations.ts"
import { MediaToken } from "../recording/MediaToken.ts"
import * as RecordedMediaGuard from "./RecordedMediaGuard.ts"
import { eventually } from "../../test/support/Eventually.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"

const standIns = Layer.mergeAll(
  HttpRouter.add("GET", "/playback/:cameraId/index.m3u8", HttpServerResponse.text("playlist")),
  HttpRouter.add("GET", "/playback/:cameraId/segments/:segment", HttpServerResponse.text("segment")),
  HttpRouter.add("GET", "/export/:file", HttpServerResponse.text("mp4"))
)

const harness = Effect.gen(function*() {
  const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
  const services = Layer.mergeAll(CameraStore.layer, TestAuth.layer({ VMS_BOOTSTRAP_TOKEN: bootstrap })).pipe(
    Layer.provideMerge(database)
  )
  const server = HttpRouter.serve(standIns.pipe(Layer.provide(RecordedMediaGuard.layer), Layer.provide(TestQuota.layer)), {
    disableLogger: true,
    disableListenLog: true
  }).pipe(
    Layer.provideMerge(services),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )
  const context = yield* Layer.build(server)
  const base = NetAddress.formatUrlUnsafe(Context.get(context, HttpServer.HttpServer).address)
  const sql = Context.get(context, SqlClient.SqlClient)
  const credentials = Context.get(context, CredentialStore)
  yield* sql`INSERT INTO agencies (id, name) VALUES ('a', 'A'), ('b', 'B')`
  yield* sql`INSERT INTO cameras (id, agency_id, name, url) VALUES ('cam-a', 'a', 'A', 'rtsp://h/a'), ('cam-b', 'b', 'B', 'rtsp://h/b')`
  const key = (role: "viewer" | "operator", agencyId: string) =>
    Effect.map(credentials.createApiToken({ name: role, role, agencyId, createdBy: "test" }), (created) => created.token)
  const get = (path: string, apiKey?: string) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, { headers: apiKey === undefined ? {} : { "x-api-key": apiKey } })
      return { status: response.status, text: await response.text() }
    })
  return { get, key, sql, signer: Context.get(context, MediaToken) }
})

describe("recorded media guard", () => {
  it.live("playback and export need credentials, the permission and the agency; exports are audited", () =>
    Effect.gen(function*() {
      const { get, key, sql, signer } = yield* harness
      const range = "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"
      const viewerA = yield* key("viewer", "a")
      const operatorA = yield* key("operator", "a")

      assert.strictEqual((yield* get(`/playback/cam-a/index.m3u8?${range}`)).status, 401)
      assert.strictEqual((yield* get(`/export/cam-a.mp4?${range}`)).status, 401)
      assert.strictEqual((yield* get(`/playback/cam-a/index.m3u8?${range}`, viewerA)).status, 200)
      assert.strictEqual((yield* get(`/playback/cam-b/index.m3u8?${range}`, viewerA)).status, 404)
      assert.strictEqual((yield* get(`/export/cam-a.mp4?${range}`, viewerA)).status, 403)
      assert.strictEqual((yield* get(`/export/cam-b.mp4?${range}`, operatorA)).status, 404)
      const exported = yield* get(`/export/cam-a.mp4?${range}`, operatorA)
      assert.strictEqual(exported.status, 200)
      assert.strictEqual(exported.text, "mp4")
      // Segments carry their own signed tokens (checked by the playback route).
      assert.strictEqual((yield* get("/playback/cam-b/segments/1.ts?token=x")).status, 200)

      const token = signer.sign("/playback/cam-a/", Date.now() + 60_000)
      assert.strictEqual((yield* get(`/playback/cam-a/index.m3u8?${range}&token=${token}`)).status, 200)
      assert.strictEqual((yield* get(`/playback/cam-b/index.m3u8?${range}&token=${token}`)).status, 403)
      const late = signer.sign("/playback/cam-a/", Date.now() - 60_000)
      assert.strictEqual((yield* get(`/playback/cam-a/index.m3u8?${range}&token=${late}`)).status, 403)

      const audit = yield* sql<{ action: string; targetId: string; actorKind: string; details: any }>`
        SELECT action, target_id AS "targetId", actor_kind AS "actorKind", details FROM audit_log`
      assert.deepStrictEqual(audit.map((row) => [row.action, row.targetId, row.actorKind, row.details.from]), [
        ["export", "cam-a", "token", "2026-01-01T00:00:00Z"]
      ])
    }))

  it.live("playback and exports count against the agency's playback streams, apart from live; an export frees its slot when made", () =>
    Effect.gen(function*() {
      const { get, key, sql } = yield* harness
      const range = "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"
      yield* sql`UPDATE agencies SET max_playback_streams = 1, max_live_streams = 0`
      const [operatorA, operatorB] = [yield* key("operator", "a"), yield* key("operator", "b")]

      // Exports hold their slot only while they are made.
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* get(`/export/cam-a.mp4?${range}`, operatorA)).status, 200)
      // A playlist opens a playback stream that stays for its segments; the agency's next one is refused.
      assert.strictEqual((yield* get(`/playback/cam-a/index.m3u8?${range}`, operatorA)).status, 200)
      for (const path of [`/playback/cam-a/index.m3u8?${range}`, `/export/cam-a.mp4?${range}`]) {
        const refused = yield* get(path, operatorA)
        assert.strictEqual(refused.status, 429, refused.text)
        const body = JSON.parse(refused.text)
        assert.strictEqual(body.error.code, "QuotaExceeded")
        assert.deepInclude(body.error.details, { agencyId: "a", limit: 1, inUse: 1, kind: "playback" })
      }
      // Another agency has its own; live (limit 0 here) is counted apart.
      assert.strictEqual((yield* get(`/playback/cam-b/index.m3u8?${range}`, operatorB)).status, 200)
      // No limit: never refused.
      yield* sql`UPDATE agencies SET max_playback_streams = NULL`
      yield* eventually("the new limit read", Effect.map(get(`/playback/cam-a/index.m3u8?${range}`, operatorA), (r) =>
        r.status === 200 ? true : undefined), 35_000, 500)
    }), 60_000)
})
