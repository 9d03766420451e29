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

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const readiness = yield* Readiness
    const metrics = yield* Metrics
    yield* router.add("GET", "/health/live", HttpServerResponse.jsonUnsafe({ status: "live" }, { headers: noStore }))
    yield* router.add(
      "GET",
      "/health/ready",
      Effect.map(readiness.report, (report) =>
        HttpServerResponse.jsonUnsafe(
          { status: report.ready ? "ready" : "not ready", checks: report.checks },
          { status: report.ready ? 200 : 503, headers: noStore }
        ))
    )
    yield* router.add(
      "GET",
      "/metrics",
      Effect.map(metrics.render, ({ body, contentType }) => HttpServerResponse.text(body, { contentType, headers: noStore }))
    )
  })
)
