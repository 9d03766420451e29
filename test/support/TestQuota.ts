/**
 * Viewer sessions and agency quotas for tests that mount the APIs without a
 * whole node: the real `AgencyQuota` and `ViewerSession` actors on the
 * node's embedded sharding (one in-process runner, its mailbox in the
 * test's Postgres), the agencies in that database, and the reservation store
 * of the config (in process, or Redis with `VMS_REDIS_URL`). Needs the
 * camera store, the media token signer, the config, metrics and `SqlClient`.
 */
import { Layer } from "effect"
import { AgencyQuotaLayer } from "../../actors/AgencyQuota.ts"
import { ViewerSessionLayer } from "../../actors/ViewerSession.ts"
import * as AgencyStore from "../../runtime/agencies/AgencyStore.ts"
import { Readiness } from "../../runtime/health/Readiness.ts"
import { QuotaMetrics } from "../../runtime/metrics/QuotaMetrics.ts"
import * as ReservationStore from "../../runtime/quota/ReservationStore.ts"
import { ViewerSessions } from "../../runtime/quota/ViewerSessions.ts"
import { QuotaAdmissions } from "../../runtime/quota/QuotaAdmissions.ts"
import * as LocalSharding from "../../runtime/sharding/LocalSharding.ts"

export const layer = ViewerSessions.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(AgencyQuotaLayer, ViewerSessionLayer)),
  Layer.provideMerge(QuotaAdmissions.layer),
  Layer.provideMerge(Layer.mergeAll(AgencyStore.layer, ReservationStore.layer, QuotaMetrics.layer)),
  Layer.provideMerge(LocalSharding.layer),
  Layer.provide(Readiness.layerExpecting([]))
)
