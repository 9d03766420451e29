/**
 * The node's Prometheus registry (prom-client). Owns the process/Node default
 * metrics (minus the gauges whose `_total` names break `promtool check
 * metrics`) and `vms_build_info`; every other module registers its own
 * `vms_*` metrics on `registry`.
 */
import { Context, Effect, Layer } from "effect"
import { createRequire } from "node:module"
import client from "prom-client"

const require = createRequire(import.meta.url)
const versionOf = (packageJson: string): string => (require(packageJson) as { version: string }).version
/** This node's version, from the project's package.json. */
export const nodeVersion = versionOf("../../package.json")

/** Default gauges named `*_total`: promtool reserves that suffix for counters. */
const misnamedDefaults = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]

export class Metrics extends Context.Service<Metrics, {
  readonly registry: client.Registry
  /** The exposition text for `/metrics`. */
  readonly render: Effect.Effect<{ readonly contentType: string; readonly body: string }>
}>()("vms/runtime/metrics/Metrics") {
  static readonly layer = Layer.sync(Metrics, () => {
    const registry = new client.Registry()
    client.collectDefaultMetrics({ register: registry })
    for (const name of misnamedDefaults) registry.removeSingleMetric(name)
    const buildInfo = new client.Gauge({
      name: "vms_build_info",
      help: "Build information of this node: always 1, with the versions as labels",
      labelNames: ["version", "node_version", "effect_version"],
      registers: [registry]
    })
    buildInfo.set({ version: nodeVersion, node_version: process.versions.node, effect_version: versionOf("effect/package.json") }, 1)
    return Metrics.of({
      registry,
      render: Effect.promise(() => registry.metrics()).pipe(
        Effect.map((body) => ({ contentType: registry.contentType, body }))
      )
    })
  })
}
