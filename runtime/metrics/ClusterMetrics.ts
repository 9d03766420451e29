/**
 * What an operator graphs about the cluster from each node: the nodes it
 * sees, the shards it owns, shards it gained or lost, and how long its lease
 * renewals take. In embedded mode the one node owns every shard and sees
 * itself. Gauges are read when scraped.
 */
import { Context, Effect, Layer } from "effect"
import client from "prom-client"
import { Metrics } from "./Metrics.ts"

export interface ClusterView {
  /** Nodes (runners) in the membership as this node last read it. */
  nodes: number
  /** Shards of the default group this node owns now. */
  shardsOwned: () => number
}

export class ClusterMetrics extends Context.Service<ClusterMetrics, {
  readonly view: ClusterView
  /** A shard came to this node (`acquired`) or left it (`lost`: lease lapsed or taken; `released`: handed over). */
  readonly shardMoved: (direction: "acquired" | "lost" | "released") => void
  readonly leaseRenewal: (seconds: number) => void
  /** This node proved another runner dead and freed its shards. */
  readonly runnerBuried: () => void
}>()("vms/runtime/metrics/ClusterMetrics") {
  static readonly layer = Layer.effect(
    ClusterMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const view: ClusterView = { nodes: 1, shardsOwned: () => 0 }
      new client.Gauge({
        name: "vms_cluster_nodes",
        help: "Nodes in the cluster membership as this node sees it",
        registers: [registry],
        collect() {
          this.set(view.nodes)
        }
      })
      new client.Gauge({
        name: "vms_shards_owned",
        help: "Shards (of 300) whose actors run on this node",
        registers: [registry],
        collect() {
          this.set(view.shardsOwned())
        }
      })
      const moves = new client.Counter({
        name: "vms_shard_moves_total",
        help: "Shards that came to this node or left it",
        labelNames: ["direction"],
        registers: [registry]
      })
      const renewals = new client.Histogram({
        name: "vms_lease_renewal_seconds",
        help: "Time to renew this node's shard leases and membership in NATS (one round of renewals)",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry]
      })
      const burials = new client.Counter({
        name: "vms_cluster_dead_runners_total",
        help: "Runners this node proved dead (no NATS connection, HTTP port refused) and whose shards it freed before their leases lapsed",
        registers: [registry]
      })
      return ClusterMetrics.of({
        view,
        shardMoved: (direction) => moves.inc({ direction }),
        leaseRenewal: (seconds) => renewals.observe(seconds),
        runnerBuried: () => burials.inc()
      })
    })
  )
}
