/**
 * Sharding across nodes (cluster mode): effect/cluster's socket runner with
 * its sockets carried over NATS subjects (NatsSocket), runner membership and
 * shard leases in NATS KV (NatsRunnerStorage), the persisted mailbox in the
 * shared Postgres, and the ownership fence on the leases. Provides the same
 * services as LocalSharding, so the actors do not know which mode they run in.
 */
import { NodeCrypto } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import {
  RunnerAddress,
  RunnerHealth,
  Runners,
  ShardingConfig,
  SocketRunner,
  SqlMessageStorage
} from "effect/cluster"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket/Socket"
import { SocketServer } from "effect/socket/SocketServer"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { NatsClient } from "./NatsClient.ts"
import * as NatsRunnerStorage from "./NatsRunnerStorage.ts"
import * as NatsSocket from "./NatsSocket.ts"
import { OwnershipFence } from "./ShardLeases.ts"
import { shardsPerGroup, shardsReadiness } from "./Shards.ts"

export interface NatsShardingOptions {
  /** This runner's identity in the cluster: the node id (and its HTTP port, to tell apart nodes sharing an id by mistake). */
  readonly nodeId: string
  readonly port: number
  readonly timing?: NatsRunnerStorage.LeaseTiming
}

const clientProtocol = Layer.effect(
  Runners.RpcClientProtocol,
  Effect.gen(function*() {
    const nats = yield* NatsClient
    const serialization = yield* RpcSerialization.RpcSerialization
    const options = { connection: nats.connection, namespace: nats.namespace }
    return Runners.RpcClientProtocol.of({
      codecFor: serialization.codecFor,
      make: (address) =>
        RpcClient.makeProtocolSocket().pipe(
          Effect.provideService(Socket, NatsSocket.connect(options, address)),
          Effect.provideService(RpcSerialization.RpcSerialization, serialization)
        )
    })
  })
)

const socketServer = (address: RunnerAddress.RunnerAddress) =>
  Layer.effect(
    SocketServer,
    Effect.flatMap(NatsClient, (nats) =>
      NatsSocket.makeServer({ connection: nats.connection, namespace: nats.namespace }, address))
  )

export const layer = (options: NatsShardingOptions) => {
  const timing = options.timing ?? NatsRunnerStorage.defaultLeaseTiming
  const address = RunnerAddress.make(options.nodeId, options.port)
  const config = ShardingConfig.layer({
    runnerAddress: Option.some(address),
    shardsPerGroup,
    // Lease renewal about every second; Sharding gives up a shard whose renewal fails within that.
    shardLockRefreshInterval: "1 second",
    shardLockExpiration: `${timing.leaseMs} millis`,
    refreshAssignmentsInterval: "250 millis",
    entityMessagePollInterval: "500 millis",
    runnerJoinDebounce: "1 second",
    entityMaxIdleTime: "5 minutes",
    entityTerminationTimeout: "3 seconds",
    preemptiveShutdown: true
  })
  return Layer.mergeAll(shardsReadiness, OwnershipFence.layerLeases()).pipe(
    Layer.provideMerge(SocketRunner.layer),
    Layer.provide([socketServer(address), clientProtocol]),
    // Membership is the lease on the runner's key: a runner that stops renewing drops out.
    Layer.provide(RunnerHealth.layerNoop),
    Layer.provideMerge(SqlMessageStorage.layer),
    Layer.provideMerge(NatsRunnerStorage.layer(timing)),
    Layer.provide([RpcSerialization.layerSchemaBinary(), NodeCrypto.layerDigest]),
    Layer.provideMerge(config),
    Layer.provideMerge(ClusterMetrics.layer)
  )
}
