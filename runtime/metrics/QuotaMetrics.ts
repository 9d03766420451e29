/**
 * What an operator graphs about agency quotas, from the node whose
 * `AgencyQuota` actor holds each agency (exactly one node reports an
 * agency, so sums across nodes are right): live viewers, slots in use (live
 * and playback), and refusals. Gauges are read when scraped.
 */
import { Context, Effect, Layer } from "effect"
import client from "prom-client"
import { Metrics } from "./Metrics.ts"

export interface AgencyUsage {
  live: number
  playback: number
}

export class QuotaMetrics extends Context.Service<QuotaMetrics, {
  /** The agency's usage as its actor last saw it; the actor keeps the object current. */
  readonly report: (agencyId: string, usage: AgencyUsage) => void
  /** The agency's actor stopped here: another node reports it now. */
  readonly forget: (agencyId: string) => void
  readonly denied: (agencyId: string) => void
}>()("vms/runtime/metrics/QuotaMetrics") {
  static readonly layer = Layer.effect(
    QuotaMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const usages = new Map<string, AgencyUsage>()
      new client.Gauge({
        name: "vms_viewers",
        help: "Live viewer sessions of the agency",
        labelNames: ["agency"],
        registers: [registry],
        collect() {
          this.reset()
          for (const [agency, usage] of usages) this.set({ agency }, usage.live)
        }
      })
      new client.Gauge({
        name: "vms_quota_in_use",
        help: "Stream slots of the agency's quota in use (live viewers plus playback and export streams)",
        labelNames: ["agency"],
        registers: [registry],
        collect() {
          this.reset()
          for (const [agency, usage] of usages) this.set({ agency }, usage.live + usage.playback)
        }
      })
      const denials = new client.Counter({
        name: "vms_quota_denials_total",
        help: "Streams refused because the agency (or the camera) was at its limit",
        labelNames: ["agency"],
        registers: [registry]
      })
      return QuotaMetrics.of({
        report: (agencyId, usage) => void usages.set(agencyId, usage),
        forget: (agencyId) => void usages.delete(agencyId),
        denied: (agencyId) => denials.inc({ agency: agencyId })
      })
    })
  )
}
