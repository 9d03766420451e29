import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { requireBinary } from "../../test/support/Binaries.ts"
import { ApiMetrics } from "./ApiMetrics.ts"
import { Metrics } from "./Metrics.ts"

describe("ApiMetrics", () => {
  it.live("the client API's metrics, with samples, pass promtool", () =>
    Effect.gen(function*() {
      const promtool = requireBinary("promtool")
      const api = yield* ApiMetrics
      api.rpcDuration.observe({ method: "get_camera_status" }, 0.0012)
      api.rpcErrors.inc({ method: "get_camera_status", code: "CameraNotFound" })
      api.wsConnections.inc({ endpoint: "/ws" })
      api.authFailures.inc({ reason: "expired" })
      api.rateLimited.inc()
      const { body } = yield* (yield* Metrics).render
      for (const line of [
        /^vms_rpc_duration_seconds_bucket\{le="0\.0025",method="get_camera_status"\} 1$/m,
        /^vms_rpc_errors_total\{method="get_camera_status",code="CameraNotFound"\} 1$/m,
        /^vms_ws_connections\{endpoint="\/ws"\} 1$/m,
        /^vms_auth_failures_total\{reason="expired"\} 1$/m,
        /^vms_rate_limited_total 1$/m
      ]) assert.match(body, line)
      const check = spawnSync(promtool, ["check", "metrics"], { input: body, encoding: "utf8" })
      assert.strictEqual(check.status, 0, `promtool: ${check.stdout}${check.stderr}`)
    }).pipe(Effect.provide(ApiMetrics.layer.pipe(Layer.provideMerge(Metrics.layer)))))
})
