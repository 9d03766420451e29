/**
 * The node's configuration: every `VMS_*` variable, its CLI flag, its schema
 * and its default. Owns decoding raw strings (from the environment or flags)
 * into a typed `NodeConfig`; does not read the environment itself (the CLI
 * does), so tests can build a config from a plain record.
 */
import { Cause, Context, Effect, Exit, Option, Redacted, Schema, SchemaTransformation } from "effect"

const PortFromString = Schema.FiniteFromString.pipe(Schema.decodeTo(Schema.Port))
const booleanWords = ["true", "false", "1", "0", "yes", "no"] as const
type BooleanWord = typeof booleanWords[number]
const BooleanFromString = Schema.Literals(booleanWords).pipe(
  Schema.decodeTo(
    Schema.Boolean,
    SchemaTransformation.transform<boolean, BooleanWord>({
      decode: (value) => value === "true" || value === "1" || value === "yes",
      encode: (value) => (value ? "true" : "false")
    })
  )
)
const NonEmpty = Schema.Trim.pipe(Schema.decodeTo(Schema.NonEmptyString))
const Identifier = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, {
    expected: "letters, digits, '-' or '_' (at most 63 characters)"
  })
)
const UrlWithProtocols = (protocols: ReadonlyArray<string>) =>
  Schema.String.check(
    Schema.makeFilter((value: string) => {
      try {
        const url = new URL(value)
        return protocols.includes(url.protocol) && url.hostname !== ""
          ? undefined
          : `expected a ${protocols.map((p) => `${p}//`).join(" or ")} URL with a host`
      } catch {
        return `expected a ${protocols.map((p) => `${p}//`).join(" or ")} URL`
      }
    })
  )
const intFromString = (minimum: number, maximum: number) =>
  Schema.FiniteFromString.pipe(
    Schema.decodeTo(
      Schema.Number.check(
        Schema.isInt({ message: `must be a whole number from ${minimum} to ${maximum}` }),
        Schema.isBetween({ minimum, maximum }, { message: `must be a whole number from ${minimum} to ${maximum}` })
      )
    )
  )
const LogLevel = Schema.Literals(["trace", "debug", "info", "warn", "error", "fatal", "none"])

/** One configuration variable: its environment name, flag, schema and default. */
interface Field<A> {
  readonly env: string
  readonly flag: string
  readonly description: string
  readonly schema: Schema.Decoder<A>
  readonly default?: string | undefined
  readonly secret?: boolean | undefined
}

interface TypedField<A, D extends string | undefined, S extends boolean> extends Field<A> {
  readonly default?: D
  readonly secret?: S
}

const field = <A, const D extends string | undefined = undefined, const S extends boolean = false>(
  f: TypedField<A, D, S>
): TypedField<A, D, S> & { readonly hasDefault: D extends string ? true : false; readonly isSecret: S } =>
  f as never

/** The configuration table; the README's table is written from the same facts. */
export const fields = {
  httpHost: field({ env: "VMS_HTTP_HOST", flag: "http-host", description: "address the HTTP server listens on", schema: NonEmpty, default: "127.0.0.1" }),
  httpPort: field({ env: "VMS_HTTP_PORT", flag: "http-port", description: "HTTP port (0 picks a free port)", schema: PortFromString, default: "8080" }),
  dataDir: field({ env: "VMS_DATA_DIR", flag: "data-dir", description: "data directory (embedded Postgres, recordings, spool, simulator clip)", schema: NonEmpty, default: "./data" }),
  databaseUrl: field({ env: "VMS_DATABASE_URL", flag: "database-url", description: "Postgres URL; embedded Postgres under the data dir when unset", schema: UrlWithProtocols(["postgres:", "postgresql:"]), secret: true }),
  natsUrl: field({ env: "VMS_NATS_URL", flag: "nats-url", description: "NATS URL; single in-process runner when unset", schema: UrlWithProtocols(["nats:", "tls:"]) }),
  redisUrl: field({ env: "VMS_REDIS_URL", flag: "redis-url", description: "Redis URL; in-process quota store when unset", schema: UrlWithProtocols(["redis:", "rediss:"]), secret: true }),
  s3Endpoint: field({ env: "VMS_S3_ENDPOINT", flag: "s3-endpoint", description: "S3 endpoint; local filesystem store when unset", schema: UrlWithProtocols(["http:", "https:"]) }),
  s3Bucket: field({ env: "VMS_S3_BUCKET", flag: "s3-bucket", description: "S3 bucket for recordings", schema: NonEmpty, default: "vms-recordings" }),
  s3Region: field({ env: "VMS_S3_REGION", flag: "s3-region", description: "S3 region", schema: NonEmpty, default: "us-east-1" }),
  s3AccessKeyId: field({ env: "VMS_S3_ACCESS_KEY_ID", flag: "s3-access-key-id", description: "S3 access key id", schema: NonEmpty, secret: true }),
  s3SecretAccessKey: field({ env: "VMS_S3_SECRET_ACCESS_KEY", flag: "s3-secret-access-key", description: "S3 secret access key", schema: NonEmpty, secret: true }),
  s3ForcePathStyle: field({ env: "VMS_S3_FORCE_PATH_STYLE", flag: "s3-force-path-style", description: "path-style S3 addressing (MinIO, s3rver)", schema: BooleanFromString, default: "true" }),
  ffmpegPath: field({ env: "VMS_FFMPEG_PATH", flag: "ffmpeg-path", description: "ffmpeg binary (ffprobe is looked up beside it)", schema: NonEmpty, default: "ffmpeg" }),
  ffmpegWarm: field({ env: "VMS_FFMPEG_WARM", flag: "ffmpeg-warm", description: "ffmpeg processes kept started and waiting (libraries loaded), so a camera that moves here or restarts connects at once; 0 starts every ffmpeg cold", schema: intFromString(0, 64), default: "12" }),
  nodeId: field({ env: "VMS_NODE_ID", flag: "node-id", description: "this node's id in the cluster; the host name when unset", schema: Identifier }),
  advertiseUrl: field({ env: "VMS_ADVERTISE_URL", flag: "advertise-url", description: "where other nodes reach this node's HTTP port (cluster mode: live requests for its cameras are forwarded there); http://<host>:<port> when unset", schema: UrlWithProtocols(["http:", "https:"]) }),
  cluster: field({ env: "VMS_CLUSTER", flag: "cluster", description: "namespace of NATS subjects and KV buckets", schema: Identifier, default: "vms" }),
  jwtSecret: field({ env: "VMS_JWT_SECRET", flag: "jwt-secret", description: "secret for signing access tokens and media URLs (32 characters or more)", schema: Schema.String.check(Schema.isMinLength(32)), secret: true }),
  bootstrapToken: field({ env: "VMS_BOOTSTRAP_TOKEN", flag: "bootstrap-token", description: "an admin API key accepted when set", schema: Schema.String.check(Schema.isMinLength(16)), secret: true }),
  recordingSegmentSeconds: field({ env: "VMS_RECORDING_SEGMENT_SECONDS", flag: "recording-segment-seconds", description: "length of recorded segments, aligned to the wall clock (tests use a few seconds)", schema: intFromString(2, 3600), default: "60" }),
  recordingRetentionDays: field({ env: "VMS_RECORDING_RETENTION_DAYS", flag: "recording-retention-days", description: "days recordings are kept for cameras without their own retentionDays; kept until the byte budget needs the space when unset", schema: intFromString(1, 36500) }),
  recordingMaxBytes: field({ env: "VMS_RECORDING_MAX_BYTES", flag: "recording-max-bytes", description: "global byte budget of all recordings; the oldest are deleted beyond it (no budget when unset)", schema: intFromString(1, Number.MAX_SAFE_INTEGER) }),
  recordingSpoolAlertBytes: field({ env: "VMS_RECORDING_SPOOL_ALERT_BYTES", flag: "recording-spool-alert-bytes", description: "a RecordingAlert fires when the local spool (segments not yet in the store) passes this size", schema: intFromString(1, Number.MAX_SAFE_INTEGER), default: "1073741824" }),
  recordingRetentionIntervalSeconds: field({ env: "VMS_RECORDING_RETENTION_INTERVAL_SECONDS", flag: "recording-retention-interval-seconds", description: "seconds between two retention sweeps", schema: intFromString(1, 86400), default: "60" }),
  logLevel: field({ env: "VMS_LOG_LEVEL", flag: "log-level", description: "trace, debug, info, warn, error, fatal or none", schema: LogLevel, default: "info" })
} as const

type Fields = typeof fields
type Value<K extends keyof Fields> = Fields[K] extends Field<infer A> ? A : never
type Optional = { readonly [K in keyof Fields]: Fields[K]["hasDefault"] extends true ? never : K }[keyof Fields]

/** The decoded configuration; secrets are `Redacted` so they never reach a log. */
export type NodeConfigShape =
  & { readonly [K in Exclude<keyof Fields, Optional>]: Value<K> }
  & { readonly [K in Optional]: Option.Option<Fields[K]["isSecret"] extends true ? Redacted.Redacted<Value<K>> : Value<K>> }

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  variable: Schema.String,
  flag: Schema.String,
  problem: Schema.String
}) {
  get message() {
    return `${this.variable} (--${this.flag}): ${this.problem}`
  }
}

export class NodeConfig extends Context.Service<NodeConfig, NodeConfigShape>()("vms/runtime/config/NodeConfig") {}

/** Raw input: each field's string as given by a flag or the environment. */
export type RawConfig = { readonly [K in keyof Fields]?: string | undefined }

/** Reads the raw strings for every field from an environment record. */
export const rawFromEnv = (env: Readonly<Record<string, string | undefined>>): RawConfig => {
  const raw: Record<string, string | undefined> = {}
  for (const [key, f] of Object.entries(fields)) raw[key] = env[f.env] === "" ? undefined : env[f.env]
  return raw as RawConfig
}

const shown = (f: Field<unknown>, value: string) => (f.secret ? "(hidden)" : JSON.stringify(value))

/** Decodes raw strings into a `NodeConfig`; the first bad field fails with its name and problem. */
export const decode = (raw: RawConfig): Effect.Effect<NodeConfigShape, ConfigInvalid> =>
  Effect.suspend(() => {
    const out: Record<string, unknown> = {}
    for (const [key, f] of Object.entries(fields) as Array<[keyof Fields, Field<unknown>]>) {
      const given = raw[key]
      const input = given ?? f.default
      if (input === undefined) {
        out[key] = Option.none()
        continue
      }
      const exit = Schema.decodeUnknownExit(f.schema as Schema.Decoder<unknown>)(input)
      if (Exit.isFailure(exit)) {
        const error = Cause.squash(exit.cause)
        const problem = error instanceof Error ? error.message : String(error)
        return Effect.fail(new ConfigInvalid({ variable: f.env, flag: f.flag, problem: `${problem}, got ${shown(f, input)}` }))
      }
      const value = f.secret ? Redacted.make(exit.value) : exit.value
      out[key] = f.default === undefined ? Option.some(value) : value
    }
    // A cluster's nodes share agency quotas (viewer reservations) in Redis.
    if (Option.isSome(out.natsUrl as Option.Option<unknown>) && Option.isNone(out.redisUrl as Option.Option<unknown>)) {
      return Effect.fail(new ConfigInvalid({
        variable: fields.redisUrl.env,
        flag: fields.redisUrl.flag,
        problem: "is required in cluster mode (VMS_NATS_URL is set): the nodes share agency quotas in Redis"
      }))
    }
    return Effect.succeed(out as NodeConfigShape)
  })

/** Decodes a config from an environment record with optional overrides (tests, flags). */
export const fromEnv = (env: Readonly<Record<string, string | undefined>>, overrides: RawConfig = {}) => {
  const raw: Record<string, string | undefined> = { ...rawFromEnv(env) }
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) raw[key] = value
  return decode(raw as RawConfig)
}
