/**
 * The operator endpoints: `/health/live` (the process answers),
 * `/health/ready` (200 when every registered dependency is ready, else 503
 * with the reasons) and `/metrics` (Prometheus exposition).
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { Readiness } from "../health/Readiness.ts"
import { Metrics } from "../metrics/Metrics.ts"

const noStore = { "cache-control": "no-store" }

export const layer = Layer.mergeAll(
  HttpRouter.add("GET", "/health/live", HttpServerResponse.jsonUnsafe({ status: "live" }, { headers: noStore })),
  HttpRouter.add(
    "GET",
    "/health/ready",
    Effect.gen(function*() {
      const readiness = yield* Readiness
      const report = yield* readiness.report
      return HttpServerResponse.jsonUnsafe(
        { status: report.ready ? "ready" : "not ready", checks: report.checks },
        { status: report.ready ? 200 : 503, headers: noStore }
      )
    })
  ),
  HttpRouter.add(
    "GET",
    "/metrics",
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const { body, contentType } = yield* metrics.render
      return HttpServerResponse.text(body, { contentType, headers: noStore })
    })
  )
)
