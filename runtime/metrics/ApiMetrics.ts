/**
 * The client API's metrics: RPC call durations and errors per method (typed
 * `/rpc` and JSON-RPC `/ws` alike), open WebSocket connections,
 * authentication failures by reason, and calls refused by the rate limiter.
 */
import { Context, Layer } from "effect"
import client from "prom-client"
import { Metrics } from "./Metrics.ts"

export class ApiMetrics extends Context.Service<ApiMetrics, {
  readonly rpcDuration: client.Histogram<"method">
  readonly rpcErrors: client.Counter<"method" | "code">
  readonly wsConnections: client.Gauge<"endpoint">
  readonly authFailures: client.Counter<"reason">
  readonly rateLimited: client.Counter
}>()("vms/runtime/metrics/ApiMetrics") {
  static readonly layer = Layer.effect(
    ApiMetrics,
    Metrics.useSync(({ registry }) =>
      ApiMetrics.of({
        rpcDuration: new client.Histogram({
          name: "vms_rpc_duration_seconds",
          help: "Duration of RPC calls (typed /rpc and JSON-RPC /ws), by method",
          labelNames: ["method"],
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
          registers: [registry]
        }),
        rpcErrors: new client.Counter({
          name: "vms_rpc_errors_total",
          help: "RPC calls that failed, by method and error code (the error's tag)",
          labelNames: ["method", "code"],
          registers: [registry]
        }),
        wsConnections: new client.Gauge({
          name: "vms_ws_connections",
          help: "Open WebSocket connections, by endpoint (/rpc, /ws)",
          labelNames: ["endpoint"],
          registers: [registry]
        }),
        authFailures: new client.Counter({
          name: "vms_auth_failures_total",
          help: "Requests refused for their credentials, by reason (missing, invalid, expired, malformed)",
          labelNames: ["reason"],
          registers: [registry]
        }),
        rateLimited: new client.Counter({
          name: "vms_rate_limited_total",
          help: "Requests refused by the per-user and per-token rate limit",
          registers: [registry]
        })
      })
    )
  )
}
