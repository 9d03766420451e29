/**
 * Live media of a camera that runs on another node: the request is forwarded
 * to the camera's owner (found from the camera's status, reached at the HTTP
 * address it advertises in the NodeDirectory) with the caller's credentials,
 * and its answer is relayed as is. The node asked first has already checked
 * the caller may see the camera; the owner checks again. A forwarded request
 * is never forwarded twice (`X-Vms-Forwarded`), so a stale owner answers 404
 * instead of bouncing it. In embedded mode nothing is forwarded.
 */
import { Context, Effect, Layer, Option } from "effect"
import { HttpClient, HttpClientRequest, HttpServerRequest, HttpServerResponse } from "effect/http"
import { CameraControl } from "../cameras/CameraControl.ts"
import { NodeId } from "../config/NodeId.ts"
import { NodeDirectory } from "../sharding/NodeDirectory.ts"

const forwardedHeader = "x-vms-forwarded"
/** Request headers that carry who the caller is. */
const passedOn = ["authorization", "x-api-key", "x-request-id"]
/** Response headers relayed back. */
const relayed = ["cache-control", "retry-after", "content-range", "accept-ranges"]

export class OwnerProxy extends Context.Service<OwnerProxy, {
  /** The owner's answer to the current request, if the camera runs on another node. */
  readonly forward: (cameraId: string) => Effect.Effect<Option.Option<HttpServerResponse.HttpServerResponse>, never, HttpServerRequest.HttpServerRequest>
}>()("vms/runtime/http/OwnerProxy") {
  static readonly layerLocal = Layer.succeed(OwnerProxy, OwnerProxy.of({ forward: () => Effect.succeedNone }))

  static readonly layerCluster = Layer.effect(
    OwnerProxy,
    Effect.gen(function*() {
      const control = yield* CameraControl
      const directory = yield* NodeDirectory
      const selfId = yield* NodeId
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatus(() => true))
      const forward = (cameraId: string) =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          if (request.headers[forwardedHeader] !== undefined) return Option.none()
          const status = yield* Effect.option(control.status(cameraId))
          if (Option.isNone(status) || status.value.nodeId === selfId) return Option.none()
          const owner = yield* directory.httpUrl(status.value.nodeId)
          if (Option.isNone(owner)) return Option.none()
          const headers: Record<string, string> = { [forwardedHeader]: selfId }
          for (const name of passedOn) {
            const value = request.headers[name]
            if (value !== undefined) headers[name] = value
          }
          const answer = yield* client.execute(
            HttpClientRequest.get(`${owner.value}${request.url}`).pipe(HttpClientRequest.setHeaders(headers))
          ).pipe(
            Effect.flatMap((response) =>
              Effect.map(response.arrayBuffer, (body) => {
                const out: Record<string, string> = { "x-vms-served-by": status.value.nodeId }
                for (const name of relayed) {
                  const value = response.headers[name]
                  if (value !== undefined) out[name] = value
                }
                return HttpServerResponse.uint8Array(new Uint8Array(body), {
                  status: response.status,
                  contentType: response.headers["content-type"] ?? "application/octet-stream",
                  headers: out
                })
              })
            ),
            Effect.timeout("5 seconds"),
            Effect.option
          )
          return answer
        }).pipe(Effect.withSpan("OwnerProxy.forward"))
      return OwnerProxy.of({ forward })
    })
  )
}
