/**
 * `GET /rpc` (the `VmsRpcs` group over WebSocket with Effect's JSON
 * serialization, for the typed client in `Client.ts`) and `GET /ws` (the
 * same group as JSON-RPC 2.0, `JsonRpcProtocol.ts`), on the node's router.
 * Both mark loopback peers for setup mode (`RpcAuth.ts`) and count open
 * connections in `vms_ws_connections`.
 */
import { Effect, Layer, Option } from "effect"
import { Headers, HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { RpcSerialization, RpcServer } from "effect/rpc"
import type { Scope } from "effect"
import { Authenticator, isLoopback } from "../runtime/auth/Authenticator.ts"
import { ApiMetrics } from "../runtime/metrics/ApiMetrics.ts"
import * as JsonRpcProtocol from "./JsonRpcProtocol.ts"
import { JsonRpcSinks } from "./JsonRpcSinks.ts"
import { loopbackHeader, loopbackProof } from "./RpcAuth.ts"
import { VmsRpcs } from "./VmsRpcs.ts"

type Upgrade = Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest | Scope.Scope>

/** The request with `x-vms-loopback` set only by us, and only for a loopback peer. */
const markLoopback = (upgrade: Upgrade): Upgrade =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const loopback = isLoopback(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"])
    const headers = Headers.remove(request.headers, loopbackHeader)
    const marked = loopback ? Headers.set(headers, loopbackHeader, loopbackProof) : headers
    return yield* Effect.provideService(upgrade, HttpServerRequest.HttpServerRequest, request.modify({ headers: marked }))
  })

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const metrics = yield* ApiMetrics
    const authenticator = yield* Authenticator

    const counted = (endpoint: string, upgrade: Upgrade): Upgrade =>
      Effect.acquireUseRelease(
        Effect.sync(() => metrics.wsConnections.inc({ endpoint })),
        () => upgrade,
        () => Effect.sync(() => metrics.wsConnections.dec({ endpoint }))
      )

    // No span per call: nothing exports traces, and making one cost a quarter of
    // a status call's CPU; `vms_rpc_duration_seconds` times every call instead.
    const typed = yield* RpcServer.toHttpEffectWebsocket(VmsRpcs, { disableTracing: true }).pipe(
      Effect.provide(RpcSerialization.layerJson)
    )
    yield* router.add("GET", "/rpc", markLoopback(counted("/rpc", typed)))

    const jsonRpc = yield* JsonRpcProtocol.make(VmsRpcs, {
      sinks: yield* JsonRpcSinks,
      authenticate: (headers) =>
        authenticator.authenticate({
          header: (name) => headers.find(([key]) => key === name)?.[1],
          loopback: false
        }).pipe(
          Effect.map((principal) => ({ role: principal.role, agencyId: principal.agencyId })),
          Effect.mapError((failure) => ({ _tag: "Unauthorized", message: failure.message }))
        )
    })
    yield* RpcServer.make(VmsRpcs, { disableTracing: true }).pipe(
      Effect.provideService(RpcServer.Protocol, jsonRpc.protocol),
      Effect.forkScoped
    )
    yield* router.add("GET", "/ws", markLoopback(counted("/ws", jsonRpc.httpEffect)))
  })
)
