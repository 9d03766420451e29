/**
 * Live HLS for the cameras running on this node: `GET /live/{cameraId}/index.m3u8`
 * (never cached: it changes every second) and its segments (immutable), for
 * viewers with a live session's URL (`MediaAccess.authorizeLive`).
 * Camera ids and segment names are checked against strict patterns before
 * any lookup, and segments are served only if the stream lists them, so no
 * request can name another file.
 */
import { Effect, Layer, Option } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import * as fs from "node:fs/promises"
import { chunkFilePattern } from "../ffmpeg/IngestProcess.ts"
import { LiveRegistry } from "../live/LiveRegistry.ts"
import * as MediaAccess from "./MediaAccess.ts"
import { OwnerProxy } from "./OwnerProxy.ts"

export const cameraIdPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

const notFound = (message: string) =>
  HttpServerResponse.jsonUnsafe({ error: { code: "NotFound", message } }, {
    status: 404,
    headers: { "cache-control": "no-store" }
  })

/** Not live here: the owner's answer when the camera runs on another node of the cluster, else 404. */
const fromOwner = (cameraId: string) =>
  Effect.gen(function*() {
    const proxy = yield* OwnerProxy
    const answer = yield* proxy.forward(cameraId)
    return Option.getOrElse(answer, () => notFound(`camera ${cameraId} is not live`))
  })

const playlist = Effect.gen(function*() {
  const registry = yield* LiveRegistry
  const { cameraId } = yield* HttpRouter.params
  if (cameraId === undefined || !cameraIdPattern.test(cameraId)) return notFound("no such camera")
  const grant = yield* MediaAccess.authorizeLive(cameraId)
  if (grant._tag === "Refused") return grant.response
  const stream = registry.get(cameraId)
  if (Option.isNone(stream)) return yield* fromOwner(cameraId)
  const text = yield* stream.value.playlist
  if (Option.isNone(text)) {
    return HttpServerResponse.jsonUnsafe(
      { error: { code: "NotReady", message: `camera ${cameraId} has no live video yet` } },
      { status: 503, headers: { "retry-after": "1", "cache-control": "no-store" } }
    )
  }
  return HttpServerResponse.text(MediaAccess.withToken(text.value, grant.token), {
    contentType: "application/vnd.apple.mpegurl",
    headers: { "cache-control": "no-cache, no-store" }
  })
})

const segment = Effect.gen(function*() {
  const registry = yield* LiveRegistry
  const { cameraId, segment } = yield* HttpRouter.params
  if (cameraId === undefined || !cameraIdPattern.test(cameraId)) return notFound("no such camera")
  if (segment === undefined || !chunkFilePattern.test(segment)) return notFound("no such segment")
  const grant = yield* MediaAccess.authorizeLive(cameraId)
  if (grant._tag === "Refused") return grant.response
  const stream = registry.get(cameraId)
  if (Option.isNone(stream)) return yield* fromOwner(cameraId)
  const file = yield* stream.value.resolve(segment)
  if (Option.isNone(file)) return notFound(`segment ${segment} is not available`)
  const bytes = yield* Effect.promise(() => fs.readFile(file.value).catch(() => undefined))
  if (bytes === undefined) return notFound(`segment ${segment} is not available`)
  return HttpServerResponse.uint8Array(bytes, {
    contentType: "video/mp2t",
    headers: { "cache-control": "public, max-age=60, immutable" }
  })
})

/** CORS for browser players served from another origin. */
const cors = { "access-control-allow-origin": "*" }
const withCors = <E, R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.map(handler, HttpServerResponse.setHeaders(cors))

/** Registers the routes on the running router, with this node's live registry. */
export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const services = yield* Effect.context<LiveRegistry | OwnerProxy | MediaAccess.Services>()
    const provide = <E>(
      handler: Effect.Effect<
        HttpServerResponse.HttpServerResponse,
        E,
        LiveRegistry | OwnerProxy | MediaAccess.Services | HttpRouter.RouteContext | HttpServerRequest.HttpServerRequest
      >
    ) => withCors(handler).pipe(Effect.provideContext(services))
    yield* router.add("GET", "/live/:cameraId/index.m3u8", provide(playlist))
    yield* router.add("GET", "/live/:cameraId/:segment", provide(segment))
  })
)
