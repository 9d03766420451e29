/**
 * The node's connection to NATS (cluster mode), with the namespace
 * (`VMS_CLUSTER`) every subject and KV bucket of this cluster lives under,
 * and a second one for bulk data.
 * Reconnects forever; JetStream calls time out after `requestTimeoutMs` so a
 * node cut off from NATS notices within a lease instead of waiting 5 s.
 * Owns only the connection: leases, transport and events are built on it.
 */
import { jetstream } from "@nats-io/jetstream"
import { Bucket, Kvm, type KV } from "@nats-io/kv"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Context, Effect, Layer, Schema } from "effect"

export class NatsUnavailable extends Schema.TaggedError<NatsUnavailable>()("NatsUnavailable", {
  operation: Schema.String,
  message: Schema.String
}) {}

export interface NatsClientOptions {
  /** One or more server URLs, comma-separated. */
  readonly url: string
  /** `VMS_CLUSTER`: the prefix of subjects and KV buckets. */
  readonly namespace: string
  /** The connection's name as NATS shows it (the node id). */
  readonly name: string
  readonly requestTimeoutMs?: number
}

export interface KvBucketOptions {
  /** The bucket's max_age: entries not rewritten within it disappear. */
  readonly maxAgeMs: number
}

export interface NatsClientService {
  readonly connection: NatsConnection
  readonly namespace: string
  /** Opens (creating if needed) the memory-backed KV bucket `<namespace>_<name>`. */
  readonly bucket: (name: string, options: KvBucketOptions) => Effect.Effect<KV, NatsUnavailable>
}

const makeClient = (options: NatsClientOptions) =>
  Effect.gen(function*() {
    const servers = options.url.split(",").map((server) => server.trim())
    const connection = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connect({
            servers,
            name: options.name,
            maxReconnectAttempts: -1,
            reconnectTimeWait: 250,
            // Notice a dead server within ~3 s, not the default 4 minutes.
            pingInterval: 1_000,
            maxPingOut: 3,
            timeout: 2_000
          }),
        catch: (cause) => new NatsUnavailable({ operation: "connect", message: String(cause) })
      }),
      (nc) => Effect.promise(() => nc.drain().catch(() => nc.close()))
    )
    const js = jetstream(connection, { timeout: options.requestTimeoutMs ?? 1_000 })
    const kvm = new Kvm(js)
    const bucketName = (name: string) => `${options.namespace}_${name}`.replace(/[^A-Za-z0-9_-]/g, "_")
    const bucket = (name: string, bucketOptions: KvBucketOptions) =>
      Effect.tryPromise({
        try: () => kvm.create(bucketName(name), { history: 1, ttl: bucketOptions.maxAgeMs, storage: "memory" }),
        catch: (cause) => new NatsUnavailable({ operation: `open bucket ${bucketName(name)}`, message: String(cause) })
      })
    yield* Effect.logInfo("connected to NATS").pipe(
      Effect.annotateLogs({ server: connection.getServer(), namespace: options.namespace, connection: options.name })
    )
    return { connection, namespace: options.namespace, bucket } satisfies NatsClientService
  })

export class NatsClient extends Context.Service<NatsClient, NatsClientService>()("vms/runtime/sharding/NatsClient") {
  static readonly layer = (options: NatsClientOptions) => Layer.effect(NatsClient, Effect.map(makeClient(options), NatsClient.of))
}

/**
 * A second connection, for bulk data (live tails: hundreds of kilobytes per
 * camera when a node stops). NATS handles each connection's messages in the
 * order sent, so on the node's one connection the lease releases and
 * announcements of a stopping node queued behind its cameras' tails.
 */
export class NatsBulkClient extends Context.Service<NatsBulkClient, NatsClientService>()("vms/runtime/sharding/NatsBulkClient") {
  static readonly layer = (options: NatsClientOptions) =>
    Layer.effect(NatsBulkClient, Effect.map(makeClient({ ...options, name: `${options.name} (bulk)` }), NatsBulkClient.of))
}

/**
 * The keys of a bucket that match `filter` (`runner.*`, `>`), read from the
 * bucket stream's subject list: one request (paged by the client when long).
 * Not `KV.keys()`: its ephemeral consumer (nats.js 3.4) ends only when a
 * delivery reports nothing pending, and keys rewritten while it runs can keep
 * that from happening; then it delivers every rewrite until the caller gives
 * up. Measured here against nats-server 2.9.10: 3 of 619 listings of a bucket
 * whose keys were rewritten twice a second took 3-8 s and returned 23-50
 * "keys" instead of 3, while effect/cluster's assignment refresh gives up
 * after 5 s and waits a second more. Keys whose newest message is a delete
 * marker are listed too; a `get` tells them apart.
 */
export const listKeys = async (kv: KV, filter: string): Promise<Array<string>> => {
  if (!(kv instanceof Bucket)) throw new Error("listKeys needs a bucket opened by Kvm")
  const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: kv.fullKeyName(filter) })
  return Object.keys(info.state.subjects ?? {}).map((subject) => kv.decodeKey(subject.substring(kv.prefixLen)))
}
