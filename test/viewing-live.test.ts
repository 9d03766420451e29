/**
 * A viewer session end to end on a whole node with the simulator, real
 * ffmpeg and headless Chromium: a viewer's token alone opens no live media;
 * the session's live URL plays in the player page, its fetches keep the
 * session, the agency's one slot is taken while it plays, and stopping the
 * session closes the URL at once.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import * as Node from "../runtime/Node.ts"
import { launchChromium } from "./support/Browser.ts"
import { eventually } from "./support/Eventually.ts"
import { testConfig } from "./support/TestNode.ts"

const bootstrap = "bootstrap-token-for-viewing-tests-0123"

const node = Layer.unwrap(Effect.map(testConfig({ VMS_BOOTSTRAP_TOKEN: bootstrap }), (config) => Node.layer(config))).pipe(
  Layer.provideMerge(NodeServices.layer)
)

const call = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.promise(async () => {
      const response = await fetch(`${NetAddress.formatUrlUnsafe(server.address)}${path}`, {
        method,
        headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const text = await response.text()
      return { status: response.status, text, json: text === "" ? undefined : JSON.parse(text) }
    }))

describe("viewing live video", () => {
  it.live("a session's live URL plays in Chromium and holds the agency's slot; a token alone opens nothing; stop closes it", () =>
    Effect.gen(function*() {
      const admin = { "x-api-key": bootstrap }
      const simulator = yield* startTestSimulator({ cameras: 1 })
      assert.strictEqual((yield* call("POST", "/api/v1/agencies", admin, { id: "wall", name: "Wall", maxLiveStreams: 1 })).status, 201)
      const camera = { id: "yard", name: "Yard", url: simulator.url(0), agencyId: "wall" }
      assert.strictEqual((yield* call("POST", "/api/v1/cameras", admin, camera)).status, 201)
      const token = yield* call("POST", "/api/v1/tokens", admin, { name: "wall display", role: "viewer", agencyId: "wall" })
      assert.strictEqual(token.status, 201, token.text)
      const viewer = { "x-api-key": token.json.token as string }
      yield* eventually("yard online", Effect.map(call("GET", "/api/v1/cameras/yard/status", viewer), (r) =>
        r.json?.status === "online" ? true : undefined), 10_000, 100)

      const bare = yield* call("GET", "/live/yard/index.m3u8", viewer)
      assert.strictEqual(bare.status, 403, bare.text)
      assert.strictEqual(bare.json.error.code, "SessionRequired")

      const session = yield* call("POST", "/api/v1/viewers", viewer, { cameraId: "yard" })
      assert.strictEqual(session.status, 201, session.text)
      const liveUrl: string = session.json.liveUrl
      const browser = yield* launchChromium
      const page = yield* Effect.promise(() => browser.newPage())
      const base = NetAddress.formatUrlUnsafe((yield* HttpServer.HttpServer).address)
      yield* Effect.promise(() => page.goto(`${base}/player/yard?src=${encodeURIComponent(liveUrl)}`))
      const currentTime = Effect.promise(() => page.evaluate<number>(`document.querySelector("video").currentTime`))
      const start = yield* eventually("playback started", Effect.map(currentTime, (t) => t > 0 ? t : undefined), 15_000, 100)
      yield* eventually("3 s of playback", Effect.map(currentTime, (t) => t - start >= 3 ? t : undefined), 10_000, 100)

      // The playing viewer holds the agency's only slot.
      const second = yield* call("POST", "/api/v1/viewers", viewer, { cameraId: "yard" })
      assert.strictEqual(second.status, 429, second.text)
      assert.deepInclude(second.json.error.details, { agencyId: "wall", limit: 1, inUse: 1 })

      assert.strictEqual((yield* call("DELETE", `/api/v1/viewers/${session.json.sessionId}`, viewer)).status, 200)
      const closed = yield* call("GET", liveUrl, {})
      assert.strictEqual(closed.status, 403, closed.text)
      assert.strictEqual((yield* call("POST", "/api/v1/viewers", viewer, { cameraId: "yard" })).status, 201)
    }).pipe(Effect.scoped, Effect.provide(node)), 60_000)
})
